/** A small Dockerfile reader for the static tests (dockerfile.test.ts) and the image agreement test. */

export interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions of a Dockerfile: comments dropped, backslash continuations joined. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (buf === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (buf !== '' && line.trimStart().startsWith('#')) return;
    if (buf === '') start = i + 1;
    if (line.endsWith('\\')) {
      buf += `${line.slice(0, -1)} `;
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buf);
    if (m) out.push({ op: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim(), line: start });
    buf = '';
  });
  return out;
}

export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

export function stages(ins: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const i of ins) {
    if (i.op === 'FROM') {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      out.push({
        image: parts[0] ?? '',
        name: parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined,
        body: [],
      });
    } else out.at(-1)?.body.push(i);
  }
  return out;
}

/** The JSON array of an exec-form ENTRYPOINT/CMD/RUN. */
export function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string'))
    throw new Error(`not exec form: ${args}`);
  return parsed;
}
