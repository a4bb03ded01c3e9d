declare const __STS_SIDECAR_VERSION__: string | undefined;

/** Injected by the bundler from package.json; unbundled runs say so. */
export const VERSION: string =
  typeof __STS_SIDECAR_VERSION__ === 'string' ? __STS_SIDECAR_VERSION__ : '0.0.0-unbundled';
