/**
 * The oldest Node the CLI runs on. 22.15: `zlib.zstdCompressSync` (the Kafka sink's zstd) arrived in
 * 22.15, and ESM links every static import before any code runs, so on an older Node the CLI would
 * die with "does not provide an export named 'zstdCompressSync'" instead of this check's message.
 * Keep it in step with package.json's `engines` and script/lib/env.sh's `node_ok`.
 */
export const MIN_NODE = [22, 15] as const;

/** The message for a Node older than MIN_NODE, or null when this one will do. */
export function nodeVersionProblem(version: string, execPath: string): string | null {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return null;
  return (
    `tag-connector needs Node.js >= ${MIN_NODE.join('.')}; this is ${version} (${execPath}).\n` +
    `Run it through script/tag-connector, which uses the Node 24 that script/bootstrap installs,\n` +
    `or install Node.js 24 and put it first on PATH.\n`
  );
}
