// DLM mode algebra (monitor.md section 2), as tables indexed by the monitor's
// internal mode index mi = mode + 1: IV 0, NL 1, CR 2, CW 3, PR 4, PW 5, EX 6,
// and 7 for "unknown" (a lock whose mode no hook told us).
export const MI_IV = 0, MI_NL = 1, MI_CR = 2, MI_CW = 3, MI_PR = 4, MI_PW = 5, MI_EX = 6, MI_UNKNOWN = 7;

export const MI_NAMES: readonly string[] = ['IV', 'NL', 'CR', 'CW', 'PR', 'PW', 'EX', 'unknown'];

/** compatible(a, b) for kernel modes -1..5 (IV and NL are compatible with everything). */
export function compatible(a: number, b: number): boolean {
  return (INCOMPAT[a + 1] & (1 << (b + 1))) === 0;
}

/** INCOMPAT[mi]: bit set of the mode indexes incompatible with mi. */
export const INCOMPAT = new Uint8Array(8);
{
  const b = (...mis: number[]) => mis.reduce((m, x) => m | (1 << x), 0);
  INCOMPAT[MI_CR] = b(MI_EX);
  INCOMPAT[MI_CW] = b(MI_PR, MI_PW, MI_EX);
  INCOMPAT[MI_PR] = b(MI_CW, MI_PW, MI_EX);
  INCOMPAT[MI_PW] = b(MI_CW, MI_PR, MI_PW, MI_EX);
  INCOMPAT[MI_EX] = b(MI_CR, MI_CW, MI_PR, MI_PW, MI_EX);
}

/** LEQ[a * 8 + b]: a is weaker than or equal to b (NL < CR < {CW, PR} < PW < EX; IV below all). */
export const LEQ = new Uint8Array(64);
/** MEET[a * 8 + b]: the strongest mode below both; unknown absorbs. */
export const MEET = new Uint8Array(64);
{
  // strictly-below relation from the Hasse diagram, closed transitively
  const below: number[][] = [[], [MI_IV], [MI_NL], [MI_CR], [MI_CR], [MI_CW, MI_PR], [MI_PW]];
  const down = (m: number): Set<number> => {
    const s = new Set<number>([m]);
    for (const x of below[m]) for (const y of down(x)) s.add(y);
    return s;
  };
  const downs = below.map((_, m) => down(m));
  for (let a = 0; a < 7; a++) {
    for (let c = 0; c < 7; c++) LEQ[a * 8 + c] = downs[c].has(a) ? 1 : 0;
  }
  for (let a = 0; a < 8; a++) {
    for (let c = 0; c < 8; c++) {
      if (a === MI_UNKNOWN || c === MI_UNKNOWN) { MEET[a * 8 + c] = MI_UNKNOWN; continue; }
      let best = MI_IV;
      for (const x of downs[a]) if (downs[c].has(x) && downs[x].size > downs[best].size) best = x;
      MEET[a * 8 + c] = best;
    }
  }
}
