/** One temporary S3 credential set as the STS issued it. */
export interface CredentialSet {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** Epoch milliseconds. */
  readonly expiresAtMs: number;
}

/** The AWS `credential_process` document (Version 1) for a set. */
export interface CredentialProcessDocument {
  readonly Version: 1;
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly SessionToken: string;
  readonly Expiration: string;
}

/** RFC 3339 UTC with second precision, the form AWS SDKs and the `expiration` file use. */
export function formatExpiration(expiresAtMs: number): string {
  return new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function toCredentialProcess(set: CredentialSet): CredentialProcessDocument {
  return {
    Version: 1,
    AccessKeyId: set.accessKeyId,
    SecretAccessKey: set.secretAccessKey,
    SessionToken: set.sessionToken,
    Expiration: formatExpiration(set.expiresAtMs),
  };
}

/** The only parts of a set that may appear in logs, metrics or errors. */
export function loggableCredentials(set: CredentialSet): { access_key_id: string; expiration: string } {
  return { access_key_id: set.accessKeyId, expiration: formatExpiration(set.expiresAtMs) };
}

export function remainingMs(expiresAtMs: number, nowMs: number): number {
  return expiresAtMs - nowMs;
}
