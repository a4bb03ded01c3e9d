/**
 * The smallest valid sidecar environment, and the issues loadConfig reports for an environment: shared by
 * the configuration tests (src/config/*.test.ts).
 */
import { ConfigError } from '../../src/errors.ts';
import { loadConfig } from '../../src/config/load.ts';

/** The four required settings, with valid values. */
export const baseConfigEnv = {
  STS_SIDECAR_TENANT: 'team-a',
  STS_SIDECAR_BUCKET: 'artifacts',
  STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
  STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::123456789012:role/app',
};

/** The issues of the ConfigError loadConfig throws for `env`; none when it loads. */
export function configIssues(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}
