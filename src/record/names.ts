// Resource names are bytes, not text (kernel.md section 3). These helpers give
// the two spellings the report uses and decode gfs2's glock names.

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

export function fromHex(s: string): Uint8Array | undefined {
  if (s.startsWith('0x')) s = s.slice(2);
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Latin-1 (each char U+0000..U+00FF one byte); undefined if a char is outside. */
export function fromLatin1(s: string): Uint8Array | undefined {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return undefined;
    out[i] = c;
  }
  return out;
}

export function toLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** Printable text: ASCII 0x20..0x7e as is, anything else as \xNN. */
export function toPrintable(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x5c) s += '\\\\';
    else s += '\\x' + (c < 16 ? '0' : '') + c.toString(16);
  }
  return s;
}

export const GFS2_GLOCK_TYPES: Readonly<Record<number, string>> = {
  1: 'nondisk', 2: 'inode', 3: 'rgrp', 4: 'meta', 5: 'iopen', 6: 'flock', 7: 'plock', 8: 'quota', 9: 'journal',
};

export interface Gfs2Glock { type: number; type_name: string; number: string }

/** gfs2 names are 24 bytes, "%8x%16llx", space padded (kernel.md section 6). */
export function decodeGfs2(b: Uint8Array): Gfs2Glock | undefined {
  if (b.length !== 24) return undefined;
  const s = toLatin1(b);
  const t = s.slice(0, 8), n = s.slice(8);
  if (!/^ *[0-9a-f]+$/.test(t) || !/^ *[0-9a-f]+$/.test(n)) return undefined;
  const type = parseInt(t.trim(), 16);
  const name = GFS2_GLOCK_TYPES[type];
  if (!name) return undefined;
  return { type, type_name: name, number: '0x' + n.trim() };
}
