#pragma once
#include <napi.h>

// btfFacts({vmlinux?, dlm?}): tracepoint prototypes, function prototypes and struct
// members of the dlm hooks, from /sys/kernel/btf (or the given BTF/ELF files).
Napi::Value BtfFacts(const Napi::CallbackInfo &info);
