import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from './load.ts';
import { baseConfigEnv as base, configIssues as issues } from '../../test/support/config-env.ts';

describe('delivery settings', () => {
  it('are off by default', () => {
    expect(loadConfig(base)).toMatchObject({
      credentialsEndpoint: undefined,
      credentialsEndpointTokenFile: undefined,
      notifySignal: undefined,
      notifyPidFile: undefined,
      notifyUrl: undefined,
      notifyCommand: undefined,
    });
    expect(describeConfig(loadConfig(base)).STS_SIDECAR_CREDENTIALS_ENDPOINT).toBe('off');
  });

  it('accept the two loopback literals only', () => {
    const on = { ...base, STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: '/run/t/token' };
    expect(
      loadConfig({ ...on, STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:9911' }).credentialsEndpoint,
    ).toEqual({
      host: '127.0.0.1',
      port: 9911,
    });
    const v6 = loadConfig({ ...on, STS_SIDECAR_CREDENTIALS_ENDPOINT: '[::1]:9911' });
    expect(v6.credentialsEndpoint).toEqual({ host: '::1', port: 9911 });
    expect(describeConfig(v6).STS_SIDECAR_CREDENTIALS_ENDPOINT).toBe('[::1]:9911');
    for (const bad of [
      '0.0.0.0:9911',
      '10.0.0.1:80',
      'localhost:9911',
      ':9911',
      '127.0.0.2:80',
      '127.0.0.1:70000',
      'on',
    ]) {
      const found = issues({ ...on, STS_SIDECAR_CREDENTIALS_ENDPOINT: bad });
      expect(found, bad).toHaveLength(1);
      expect(found[0], bad).toMatch(/^STS_SIDECAR_CREDENTIALS_ENDPOINT: /);
    }
  });

  it('need a token file with the endpoint, and signal and PID file together', () => {
    expect(issues({ ...base, STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:9911' })).toEqual([
      'STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: required when STS_SIDECAR_CREDENTIALS_ENDPOINT is on',
    ]);
    expect(issues({ ...base, STS_SIDECAR_NOTIFY_SIGNAL: 'SIGHUP' })).toEqual([
      'STS_SIDECAR_NOTIFY_PID_FILE: required when STS_SIDECAR_NOTIFY_SIGNAL is set',
    ]);
    expect(issues({ ...base, STS_SIDECAR_NOTIFY_PID_FILE: '/run/app.pid' })).toEqual([
      'STS_SIDECAR_NOTIFY_SIGNAL: required when STS_SIDECAR_NOTIFY_PID_FILE is set',
    ]);
    expect(
      issues({ ...base, STS_SIDECAR_NOTIFY_SIGNAL: 'SIGKILL', STS_SIDECAR_NOTIFY_PID_FILE: '/p' })[0],
    ).toMatch(/^STS_SIDECAR_NOTIFY_SIGNAL: /);
  });

  it('parse the notify command as JSON argv and name the variable on bad input', () => {
    expect(
      loadConfig({ ...base, STS_SIDECAR_NOTIFY_COMMAND: '["/bin/kill","-HUP","1"]' }).notifyCommand,
    ).toEqual(['/bin/kill', '-HUP', '1']);
    for (const bad of ['/bin/reload --now', '[]', '[""]', '{"a":1}', '[1]']) {
      const found = issues({ ...base, STS_SIDECAR_NOTIFY_COMMAND: bad });
      expect(found, bad).toHaveLength(1);
      expect(found[0], bad).toMatch(/^STS_SIDECAR_NOTIFY_COMMAND: /);
    }
    expect(issues({ ...base, STS_SIDECAR_NOTIFY_URL: 'ftp://x' })[0]).toMatch(/^STS_SIDECAR_NOTIFY_URL: /);
  });

  it('reject user:password in the notify URL (ERR_CONFIG naming the variable, value never echoed)', () => {
    for (const bad of ['https://user:s3cr3t-pw@hooks.example/x', 'http://only-user@127.0.0.1:8080/']) {
      let caught: unknown;
      try {
        loadConfig({ ...base, STS_SIDECAR_NOTIFY_URL: bad });
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toMatchObject({ code: 'ERR_CONFIG' });
      const text = JSON.stringify(caught) + String((caught as Error).message);
      expect(text).toMatch(/STS_SIDECAR_NOTIFY_URL: must not contain user:password@/);
      expect(text).not.toContain('s3cr3t-pw');
      expect(text).not.toContain('only-user');
    }
    expect(loadConfig({ ...base, STS_SIDECAR_NOTIFY_URL: 'https://hooks.example/x' }).notifyUrl).toBe(
      'https://hooks.example/x',
    );
  });
});
