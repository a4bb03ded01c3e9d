/** Names of a loopback host as `URL.hostname` spells them. */
function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * The warning for an STS_SIDECAR_IDP_TOKEN_URL that sends the service-account token in clear text over the
 * network (http:// to a host that is not loopback), or undefined. A warning, not an error: an in-cluster IdP
 * behind a service mesh may be plain HTTP on purpose.
 */
export function idpTokenUrlWarning(tokenUrl: string | undefined): string | undefined {
  if (tokenUrl === undefined) return undefined;
  const url = new URL(tokenUrl);
  if (url.protocol !== 'http:' || isLoopbackHost(url.hostname)) return undefined;
  return `STS_SIDECAR_IDP_TOKEN_URL is http:// to ${url.hostname}, not loopback: the service-account token crosses the network unencrypted; use https://`;
}
