import { startLocalStack } from '../stack/local-stack.ts';
for (const m of [900, 1800, 3599, 3600, 7200]) {
  try { const s = await startLocalStack({ sts: 'ceph-rgw', roleMaxSessionDuration: m }); console.log(m, 'ok'); await s.close(); } catch (e: any) { console.log(m, 'ERR', e.code); }
}
