'use strict';
// The benchmark's baseline: a plain JavaScript port of the original in-kernel
// monitor's algorithm (/work/shared/seed/rv-monitor-dlm.patch.txt,
// kernel/trace/rv/monitors/dlm/dlm.c), driven by dlm-rv records.
//
// Kept deliberately faithful and plain, not deliberately slow:
//  - the rhashtable keyed by {ls_id, res_name} is a Map keyed by a string built
//    per event from the ls id and the name bytes;
//  - each resource keeps a list of per-node holders {nodeid, mode} (an array of
//    objects), scanned linearly by lookup_holder / check_valid_lock_holders /
//    check_all_unlock_holders, exactly as the seed does; unlocked holders stay
//    in the list (mode UNLOCK) until every holder is unlocked and the resource
//    is freed;
//  - the per-resource DA monitor (valid --with_others_compatible--> valid,
//    valid --all_unlock--> free) with the seed's start/reset semantics.
//
// Event mapping (the seed's hooks -> dlm-rv record kinds):
//  REQUEST        -> dlm_lock_validated:   set_holder_transition
//  RELEASE        -> dlm_unlock_validated: set_holder_transition
//  COMPLETION     -> dlm_ast: status 0 sets the holder's mode and checks it;
//                    -DLM_EUNLOCK unlocks the holder (frees the resource when all
//                    are unlocked); any other status is ignored
//  NODE_LEAVES_LS -> dlm_release_lockspace: unlock this node's holder on every
//                    resource of the lockspace (a walk of the global list)
//  other kinds are not hooked by the seed and are skipped.
// The completion's mode is the record's mode (the exact mode when the source
// is dlm_add_cb); when a record has none, the hook's lkb_grmode (<= 6.9 dlm_ast).

const K_REQUEST = 1, K_RELEASE = 3, K_COMPLETION = 5, K_NODE_LEAVES_LS = 7, K_LOSS = 9;
const DLM_EUNLOCK = 0x10002;
const MODE_NONE = -2;
const STATE_MODE_UNLOCK = -1;
const STATE_MODE_IN_TRANSITION = -2;

// fs/dlm/lock.c __dlm_compat_matrix; dlm_modes_compat(m1, m2) = matrix[m1 + 1][m2 + 1]
const __dlm_compat_matrix = [
  /* UN NL CR CW PR PW EX PD */
  [1, 1, 1, 1, 1, 1, 1, 0], /* UN */
  [1, 1, 1, 1, 1, 1, 1, 0], /* NL */
  [1, 1, 1, 1, 1, 1, 0, 0], /* CR */
  [1, 1, 1, 1, 0, 0, 0, 0], /* CW */
  [1, 1, 1, 0, 1, 0, 0, 0], /* PR */
  [1, 1, 1, 0, 0, 0, 0, 0], /* PW */
  [1, 1, 0, 0, 0, 0, 0, 0], /* EX */
  [0, 0, 0, 0, 0, 0, 0, 0], /* PD */
];
function dlm_modes_compat(mode1, mode2) {
  return __dlm_compat_matrix[mode1 + 1][mode2 + 1];
}

// tools/verification/models/dlm.dot, as generated into dlm.h
const valid_dlm = 0, free_dlm = 1, INVALID_STATE = 2;
const all_unlock_dlm = 0, with_others_compatible_dlm = 1, event_max_dlm = 2;
const automaton_function = [
  [free_dlm, valid_dlm],
  [INVALID_STATE, INVALID_STATE],
];

class BaselineMonitor {
  constructor() {
    this.hash = new Map(); // key string -> lock; insertion order stands in for the dlm_rv_locks list
    this.events = 0;
    this.violations = 0; // failed check_valid_lock_holders (the seed's pr_info report)
    this.daErrors = 0; // DA monitor errors (error_dlm tracepoint)
    this.resourcesPeak = 0;
    this.holders = 0; // holder objects allocated and not yet freed
    this.holdersPeak = 0;
  }

  static key(ls, buf, off, len) {
    return ls + ':' + buf.latin1Slice(off, off + len);
  }

  // --- da_monitor (include/rv/da_monitor.h, per-dlm-lock flavour of dlm_da.h) ---
  da_monitor_reset(lk) { lk.monitoring = false; lk.curr_state = valid_dlm; }
  da_event(lk, event) {
    const next = event < event_max_dlm ? automaton_function[lk.curr_state][event] : INVALID_STATE;
    if (next !== INVALID_STATE) { lk.curr_state = next; return true; }
    this.daErrors++;
    return false;
  }
  da_handle_event(lk, event) {
    if (!lk.monitoring) return;
    if (!this.da_event(lk, event)) this.da_monitor_reset(lk);
  }
  da_handle_start_event(lk, event) {
    if (!lk.monitoring) { lk.monitoring = true; lk.curr_state = valid_dlm; return false; }
    if (!this.da_event(lk, event)) this.da_monitor_reset(lk);
    return true;
  }

  // --- dlm.c ---
  lookup_lock(key) {
    return this.hash.get(key);
  }

  lookup_holder(lk, nodeid) {
    const holders = lk.holders;
    for (let i = 0; i < holders.length; i++) if (holders[i].nodeid === nodeid) return holders[i];
    return undefined;
  }

  set_holder_state(lk, nodeid, mode) {
    const hl = this.lookup_holder(lk, nodeid);
    if (hl) { hl.mode = mode; return; }
    if (mode === STATE_MODE_UNLOCK) return;
    lk.holders.push({ nodeid, mode });
    if (++this.holders > this.holdersPeak) this.holdersPeak = this.holders;
  }

  check_valid_lock_holders(lk, mode, nodeid) {
    const holders = lk.holders;
    for (let i = 0; i < holders.length; i++) {
      const hl = holders[i];
      if (hl.nodeid === nodeid || hl.mode === STATE_MODE_IN_TRANSITION) continue;
      if (!dlm_modes_compat(mode, hl.mode)) return false;
    }
    return true;
  }

  check_all_unlock_holders(lk) {
    const holders = lk.holders;
    if (holders.length === 0) return true;
    for (let i = 0; i < holders.length; i++) if (holders[i].mode !== STATE_MODE_UNLOCK) return false;
    return true;
  }

  drop_all_lock_holders(lk) {
    this.holders -= lk.holders.length;
    lk.holders = [];
  }

  unlock_lock_holder(lk, nodeid) {
    this.set_holder_state(lk, nodeid, STATE_MODE_UNLOCK);
    if (this.check_all_unlock_holders(lk)) {
      this.drop_all_lock_holders(lk);
      this.hash.delete(lk.key);
      this.da_handle_event(lk, all_unlock_dlm);
    }
  }

  handle_dlm_ast(nodeid, sb_status, key, ls, mode) {
    if (sb_status === -DLM_EUNLOCK) {
      const lk = this.lookup_lock(key);
      if (lk) this.unlock_lock_holder(lk, nodeid);
      return;
    }
    if (sb_status !== 0) return;
    let lk = this.lookup_lock(key);
    if (!lk) {
      lk = { key, ls_id: ls, holders: [], monitoring: false, curr_state: valid_dlm };
      this.da_monitor_reset(lk);
      this.da_handle_start_event(lk, with_others_compatible_dlm);
      this.set_holder_state(lk, nodeid, mode);
      this.hash.set(key, lk);
      if (this.hash.size > this.resourcesPeak) this.resourcesPeak = this.hash.size;
      return;
    }
    this.set_holder_state(lk, nodeid, mode);
    if (this.check_valid_lock_holders(lk, mode, nodeid)) {
      this.da_handle_event(lk, with_others_compatible_dlm);
    } else {
      this.violations++; // the seed prints the holders here
      this.da_handle_event(lk, event_max_dlm);
    }
  }

  set_holder_transition(key, nodeid) {
    const lk = this.lookup_lock(key);
    if (lk) {
      const hl = this.lookup_holder(lk, nodeid);
      if (hl) hl.mode = STATE_MODE_IN_TRANSITION;
    }
  }

  handle_dlm_release_lockspace(nodeid, ls) {
    for (const lk of this.hash.values()) {
      if (lk.ls_id !== ls) continue;
      this.unlock_lock_holder(lk, nodeid);
    }
  }

  /** Feed a whole number of 128-byte records. */
  consume(bytes) {
    const n = bytes.byteLength >>> 7;
    const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, n * 32);
    const i32 = new Int32Array(bytes.buffer, bytes.byteOffset, n * 32);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const b = i * 32;
      const w2 = u32[b + 2];
      const kind = w2 & 0xffff;
      const node = u32[b + 3];
      const ls = u32[b + 4];
      this.events++;
      switch (kind) {
        case K_REQUEST:
        case K_RELEASE:
          this.set_holder_transition(BaselineMonitor.key(ls, buf, i * 128 + 64, (w2 >>> 16) & 0xff), node);
          break;
        case K_COMPLETION: {
          let mode = w2 >> 24;
          if (mode === MODE_NONE) mode = (u32[b + 15] << 16) >> 24; // grmode
          this.handle_dlm_ast(node, i32[b + 7], BaselineMonitor.key(ls, buf, i * 128 + 64, (w2 >>> 16) & 0xff), ls, mode);
          break;
        }
        case K_NODE_LEAVES_LS:
          this.handle_dlm_release_lockspace(node, ls);
          break;
        case K_LOSS: // the RV framework's reset: forget everything
          this.hash.clear();
          this.holders = 0;
          break;
        default:
          break;
      }
    }
  }

  summary() {
    return {
      events: this.events,
      resources: { now: this.hash.size, peak: this.resourcesPeak },
      holders: { now: this.holders, peak: this.holdersPeak },
      violations: this.violations,
      daErrors: this.daErrors,
    };
  }
}

module.exports = { BaselineMonitor };
