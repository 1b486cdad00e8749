import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { MIN_NODE, nodeVersionProblem } from '../../src/cli/node-version.ts';

describe('nodeVersionProblem', () => {
  it('accepts the minimum and anything newer', () => {
    expect(nodeVersionProblem(`v${MIN_NODE.join('.')}.0`, '/x/node')).toBeNull();
    expect(nodeVersionProblem('v22.20.1', '/x/node')).toBeNull();
    expect(nodeVersionProblem('v24.11.0', '/x/node')).toBeNull();
    expect(nodeVersionProblem('v30.0.0', '/x/node')).toBeNull();
  });
  it('names the version found, the binary and the way out for an older Node', () => {
    for (const v of ['v20.19.5', 'v22.12.0', 'v22.14.9', 'v18.0.0']) {
      const msg = nodeVersionProblem(v, '/usr/bin/node');
      expect(msg).toContain(`needs Node.js >= ${MIN_NODE.join('.')}`);
      expect(msg).toContain(`${v} (/usr/bin/node)`);
      expect(msg).toContain('script/tag-connector');
    }
  });
  it('agrees with package.json engines', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE.join('.')}`);
  });
});

/**
 * The real entry on the machine's own old Node (v20 here: the "does not provide an export
 * named 'zstdCompressSync'"). main.ts and node-version.ts are compiled as `npm run build` compiles
 * them (tsconfig.build.json); program.js is a stand-in that, like the real program, links an export
 * Node 20 lacks. Any static import added to the entry would not resolve here and fail the test.
 */
describe('the CLI entry on an old Node', () => {
  const OLD_NODE = process.env.TAG_CONNECTOR_OLD_NODE ?? '/usr/bin/node';
  const dir = mkdtempSync(join(tmpdir(), 'tagc-entry-'));
  const cli = join(dir, 'cli');
  const compile = (name: string): string => {
    const config = ts.getParsedCommandLineOfConfigFile(
      fileURLToPath(new URL('../../tsconfig.build.json', import.meta.url)),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => void d },
    )!;
    const source = readFileSync(new URL(`../../src/cli/${name}.ts`, import.meta.url), 'utf8');
    return ts.transpileModule(source, {
      // ESNext: what NodeNext emits for a file of a "type": "module" package.
      compilerOptions: { ...config.options, module: ts.ModuleKind.ESNext, sourceMap: false },
      fileName: `${name}.ts`,
    }).outputText;
  };
  mkdirSync(cli);
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}\n');
  writeFileSync(join(cli, 'main.js'), compile('main'), { mode: 0o755 });
  writeFileSync(join(cli, 'node-version.js'), compile('node-version'));
  writeFileSync(
    join(cli, 'program.js'),
    "import { zstdCompressSync } from 'node:zlib';\nprocess.stdout.write(`program loaded ${typeof zstdCompressSync}\\n`);\n",
  );
  const run = (file: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
    spawnSync(file, args, { encoding: 'utf8', env });

  it(`${OLD_NODE} is older than ${MIN_NODE.join('.')} (else this test proves nothing)`, () => {
    const v = run(OLD_NODE, ['--version']);
    expect(v.error).toBeUndefined();
    expect(nodeVersionProblem(v.stdout.trim(), OLD_NODE)).not.toBeNull();
  });

  it('the stand-in program alone fails on it the way the issue saw', () => {
    const r = run(OLD_NODE, [join(cli, 'program.js')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("does not provide an export named 'zstdCompressSync'");
  });

  it('node main.js: the version message and exit 1, before any import that needs a newer Node', () => {
    const r = run(OLD_NODE, [join(cli, 'main.js'), 'extract-tasks', '--help']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tag-connector needs Node\.js >= 22\.15; this is v\d+\.\d+\.\d+ \(.*node\)\./);
    expect(r.stderr).toContain('Run it through script/tag-connector');
    expect(r.stderr).not.toContain('does not provide an export');
  });

  it('./main.js through its shebang with the old Node first on PATH: the same message', () => {
    const r = run(join(cli, 'main.js'), ['--version'], {
      ...process.env,
      PATH: `${dirname(OLD_NODE)}:${process.env.PATH ?? ''}`,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`tag-connector needs Node.js >= ${MIN_NODE.join('.')}`);
  });

  it('on this Node the entry goes on to load the program', () => {
    const r = run(process.execPath, [join(cli, 'main.js')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('program loaded function\n');
    expect(r.status).toBe(0);
  });
});
