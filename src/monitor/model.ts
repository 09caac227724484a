// The seed's per-resource automaton, as data (the kernel's RV monitors keep
// theirs in a generated dlm.h; tools/verification/models/dlm.dot is its source).
// The monitor only ever asks this table what the next state is; a missing edge
// is the error.

export interface AutomatonSpec {
  name: string;
  states: readonly string[];
  events: readonly string[];
  initial: number;
  final: readonly boolean[];
  /** function[state][event] = next state, or -1 where the model has no edge */
  function: readonly (readonly number[])[];
}

export const S_VALID = 0, S_FREE = 1;
export const E_ALL_UNLOCK = 0, E_WITH_OTHERS_COMPATIBLE = 1, E_INCOMPATIBLE = 2;

export const DLM_MODEL: AutomatonSpec = {
  name: 'dlm',
  states: ['valid', 'free'],
  events: ['all_unlock', 'with_others_compatible', 'incompatible'],
  initial: S_VALID,
  final: [false, true],
  function: [
    /* valid */ [S_FREE, S_VALID, -1],
    /* free  */ [-1, -1, -1],
  ],
};

/** Flat transition table for the hot path: next = T[state * nEvents + event]. */
export function compileModel(m: AutomatonSpec): Int8Array {
  const t = new Int8Array(m.states.length * m.events.length);
  m.function.forEach((row, s) => row.forEach((n, e) => { t[s * m.events.length + e] = n; }));
  return t;
}

/** Graphviz, in the shape of tools/verification/models/dlm.dot. */
export function modelToDot(m: AutomatonSpec): string {
  const lines = ['digraph state_automaton {'];
  m.states.forEach((s, i) => {
    if (i === m.initial) lines.push(`\t{node [shape = circle] "${s}"};`);
  });
  lines.push(`\t{node [shape = plaintext, style=invis, label=""] "__init_${m.states[m.initial]}"};`);
  m.states.forEach((s, i) => {
    if (m.final[i]) lines.push(`\t{node [shape = doublecircle] "${s}"};`);
  });
  lines.push(`\t"__init_${m.states[m.initial]}" -> "${m.states[m.initial]}";`);
  m.states.forEach((s, i) => {
    lines.push(`\t"${s}" [label = "${s}"${i === m.initial ? ', color = green3' : ''}]`);
    m.function[i].forEach((n, e) => {
      if (n >= 0) lines.push(`\t"${s}" -> "${m.states[n]}" [ label = "${m.events[e]}" ];`);
    });
  });
  lines.push('\t{ rank = min ;', `\t\t"__init_${m.states[m.initial]}";`, `\t\t"${m.states[m.initial]}";`, '\t}', '}');
  return lines.join('\n') + '\n';
}
