// DLM lock modes: compatibility, the QUECVT matrix and the strength order.
import { CR, CW, EX, IV, NL, PR, PW } from '../record/layout';

// Indexed [a + 1][b + 1]; IV (-1) and NL are compatible with everything.
const COMPAT: readonly (readonly number[])[] = [
  /*        IV NL CR CW PR PW EX */
  /* IV */ [1, 1, 1, 1, 1, 1, 1],
  /* NL */ [1, 1, 1, 1, 1, 1, 1],
  /* CR */ [1, 1, 1, 1, 1, 1, 0],
  /* CW */ [1, 1, 1, 1, 0, 0, 0],
  /* PR */ [1, 1, 1, 0, 1, 0, 0],
  /* PW */ [1, 1, 1, 0, 0, 0, 0],
  /* EX */ [1, 1, 0, 0, 0, 0, 0],
];

/** Conversions allowed with QUECVT (granted row, requested column), as the kernel validates them. */
const QUECVT: readonly (readonly number[])[] = [
  /*        IV NL CR CW PR PW EX */
  /* IV */ [0, 0, 0, 0, 0, 0, 0],
  /* NL */ [0, 0, 1, 1, 1, 1, 1],
  /* CR */ [0, 0, 0, 1, 1, 1, 1],
  /* CW */ [0, 0, 0, 0, 1, 1, 1],
  /* PR */ [0, 0, 0, 1, 0, 1, 1],
  /* PW */ [0, 0, 0, 0, 0, 0, 1],
  /* EX */ [0, 0, 0, 0, 0, 0, 0],
];

export function compat(a: number, b: number): boolean {
  return COMPAT[a + 1][b + 1] === 1;
}

export function quecvtOk(gr: number, rq: number): boolean {
  return QUECVT[gr + 1][rq + 1] === 1;
}

/** a <= b in the strength order IV < NL < CR < {CW, PR} < PW < EX. */
export function leq(a: number, b: number): boolean {
  if (a === b) return true;
  if ((a === CW && b === PR) || (a === PR && b === CW)) return false;
  return a < b;
}

export function isMiddle(gr: number, rq: number): boolean {
  return (gr === PR && rq === CW) || (gr === CW && rq === PR);
}

/** The kernel's down_conversion(): rq below gr, and not a PR<->CW conversion. */
export function isDown(gr: number, rq: number): boolean {
  return !isMiddle(gr, rq) && rq < gr;
}

/** Strongest mode below both (meet(PR, CW) = CR). */
export function meet(a: number, b: number): number {
  if (leq(a, b)) return a;
  if (leq(b, a)) return b;
  return CR;
}

export const ALL_MODES: readonly number[] = [NL, CR, CW, PR, PW, EX];
export { IV, NL, CR, CW, PR, PW, EX };
