// Imported first by the startup snapshot's entry (scripts/build.mjs). Whatever runs while the snapshot
// is built is frozen into it and replayed by every process started from it, so calls whose result
// must differ per process, or that would leave a timer in the heap, fail the build instead.
const v8 = process.getBuiltinModule('node:v8');
const crypto = process.getBuiltinModule('node:crypto');

const saved = {
  randomUUID: crypto.randomUUID,
  webRandomUUID: globalThis.crypto?.randomUUID,
  timeout: AbortSignal.timeout,
  any: AbortSignal.any,
};
const trap = (name) =>
  function () {
    throw new Error(
      `${name}() was called while building the startup snapshot: its result would be replayed in every process (move the call out of module scope)`,
    );
  };
crypto.randomUUID = trap('crypto.randomUUID');
if (globalThis.crypto) globalThis.crypto.randomUUID = trap('crypto.randomUUID');
AbortSignal.timeout = trap('AbortSignal.timeout');
AbortSignal.any = trap('AbortSignal.any');

v8.startupSnapshot.addSerializeCallback(() => {
  crypto.randomUUID = saved.randomUUID;
  if (globalThis.crypto) globalThis.crypto.randomUUID = saved.webRandomUUID;
  AbortSignal.timeout = saved.timeout;
  AbortSignal.any = saved.any;
});
