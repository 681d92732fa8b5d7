#ifndef CAPSTAN_CLIBFUZZER_H
#define CAPSTAN_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (in the runtime that -sanitize=fuzzer links): SwiftPM names an executable's
/// entry point after its module, so each target's @main hands its arguments to this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
