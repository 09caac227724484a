#!/usr/bin/awk -f
# Count the dlm events of a tracefs text trace (/sys/kernel/tracing/trace with events/dlm enabled).
#   awk -f tracecount.awk trace.txt
# Prints "KEY COUNT" lines:
#   tp.<event>         every dlm tracepoint seen (dlm_lock_start, dlm_ast, dlm_send_message, ...)
#   and the monitor's normalized events, as a tracepoint-only source sees them:
#   requests           dlm_lock_start
#   request_failed     dlm_lock_end with error != 0
#   releases           dlm_unlock_start (unlocks and cancels)
#   releases_cancel    dlm_unlock_start with CANCEL in flags
#   release_failed     dlm_unlock_end with error != 0
#   completion_<st>    dlm_ast by sb_status (0, -11, -35, -65537, -65538, ...)
#   blockings          dlm_bast
#   ast_swapped        dlm_ast lines whose sb_flags/sb_status were swapped by the kernel (6.10-6.12,
#                      user-space locks: sb_status prints 0, sb_flags the status' low byte); they are
#                      counted under their real status above
# POSIX awk (mawk) compatible.
function hexval(s,   i, c, v) {
  s = tolower(s); sub(/^0x/, "", s); v = 0
  for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)); if (!c) return 0; v = v * 16 + c - 1 }
  return v
}
function sbflags_value(txt,   n, parts, i, v) {   # "DEMOTED|ALTMODE|0xf0" -> 0xf5
  if (txt == "") return 0
  n = split(txt, parts, "|"); v = 0
  for (i = 1; i <= n; i++) {
    if (parts[i] == "DEMOTED") v += 1
    else if (parts[i] == "VALNOTVALID") v += 2
    else if (parts[i] == "ALTMODE") v += 4
    else if (parts[i] ~ /^0x/) v += hexval(parts[i])
    else if (parts[i] ~ /^[0-9]+$/) v += parts[i] + 0
  }
  return v
}
/^#/ { next }
{
  ev = ""; delete f
  for (i = 1; i <= NF; i++) {
    if (ev == "" && $i ~ /^dlm_[a-z_]+:$/) { ev = substr($i, 1, length($i) - 1); continue }
    if (ev != "" && (p = index($i, "=")) > 0) f[substr($i, 1, p - 1)] = substr($i, p + 1)
  }
  if (ev == "") next
  tp[ev]++
  if (ev == "dlm_lock_start") n["requests"]++
  else if (ev == "dlm_lock_end") { if (f["error"] + 0 != 0) n["request_failed"]++ }
  else if (ev == "dlm_unlock_start") { n["releases"]++; if (f["flags"] ~ /(^|\|)CANCEL(\||$)/) n["releases_cancel"]++ }
  else if (ev == "dlm_unlock_end") { if (f["error"] + 0 != 0) n["release_failed"]++ }
  else if (ev == "dlm_bast") n["blockings"]++
  else if (ev == "dlm_ast") {
    st = f["sb_status"] + 0; v = sbflags_value(f["sb_flags"])
    if (st == 0 && v > 7) {            # swapped: sb_flags holds the status' low byte
      b = v % 256; if (b >= 128) b -= 256
      if (b == -2) st = -65538; else if (b == -1) st = -65537; else st = b
      n["ast_swapped"]++
    }
    n["completion_" st]++
  }
}
END {
  for (k in tp) printf "tp.%s %d\n", k, tp[k]
  split("requests request_failed releases releases_cancel release_failed completion_0 completion_-11 completion_-35 completion_-65537 completion_-65538 blockings", ks, " ")
  for (i = 1; i in ks; i++) { printf "%s %d\n", ks[i], n[ks[i]] + 0; seen[ks[i]] = 1 }
  for (k in n) if (!(k in seen)) printf "%s %d\n", k, n[k]
}
