import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DLM_MODEL, compileModel, modelToDot } from '../../src/monitor/model';
import { compatible, MEET, LEQ, MI_CR, MI_CW, MI_PR, MI_EX, MI_NL, MI_PW, MI_IV } from '../../src/monitor/modes';

describe('the seed model as data', () => {
  it('has exactly the seed automaton: valid -with_others_compatible-> valid, valid -all_unlock-> free (final)', () => {
    const edges: string[] = [];
    DLM_MODEL.function.forEach((row, s) => row.forEach((n, e) => { if (n >= 0) edges.push(`${DLM_MODEL.states[s]} -${DLM_MODEL.events[e]}-> ${DLM_MODEL.states[n]}`); }));
    expect(edges.sort()).toEqual(['valid -all_unlock-> free', 'valid -with_others_compatible-> valid']);
    expect(DLM_MODEL.states[DLM_MODEL.initial]).toBe('valid');
    expect(DLM_MODEL.final).toEqual([false, true]);
    const t = compileModel(DLM_MODEL);
    expect(t[0 * 3 + 2]).toBe(-1); // incompatible has no edge: the error
  });

  it('renders to the dot file (golden)', () => {
    expect(modelToDot(DLM_MODEL)).toBe(readFileSync(join(__dirname, '../fixtures/golden/dlm.dot'), 'utf8'));
  });
});

describe('modes (monitor.md section 2)', () => {
  const names = ['NL', 'CR', 'CW', 'PR', 'PW', 'EX'];
  const table = [
    'yyyyyy',
    'yyyyy-',
    'yyy---',
    'yy-y--',
    'yy----',
    'y-----',
  ];
  it('compatibility matrix, symmetric, IV compatible with all', () => {
    for (let a = 0; a < 6; a++) for (let b = 0; b < 6; b++) {
      expect({ pair: `${names[a]}/${names[b]}`, c: compatible(a, b) }).toEqual({ pair: `${names[a]}/${names[b]}`, c: table[a][b] === 'y' });
    }
    for (let b = -1; b < 6; b++) expect(compatible(-1, b)).toBe(true);
  });
  it('meet and order', () => {
    expect(MEET[MI_PR * 8 + MI_CW]).toBe(MI_CR);
    expect(MEET[MI_EX * 8 + MI_PR]).toBe(MI_PR);
    expect(MEET[MI_PW * 8 + MI_CW]).toBe(MI_CW);
    expect(MEET[MI_NL * 8 + MI_EX]).toBe(MI_NL);
    for (let m = 0; m < 7; m++) expect(MEET[m * 8 + m]).toBe(m);
    expect(LEQ[MI_CW * 8 + MI_PR]).toBe(0);
    expect(LEQ[MI_PR * 8 + MI_CW]).toBe(0);
    expect(LEQ[MI_CR * 8 + MI_PR]).toBe(1);
    expect(LEQ[MI_IV * 8 + MI_NL]).toBe(1);
    expect(LEQ[MI_PW * 8 + MI_EX]).toBe(1);
  });
});
