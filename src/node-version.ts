/**
 * The Node.js versions Reelay runs on (package.json's `engines` says the same). The floor is where
 * `require()` of an ES module works without a flag (20.19, 22.12): Fastify's dependencies
 * `light-my-request` and `@fastify/static` require `cookie` 2 and `content-disposition` 3, which
 * are ES modules only. On an older Node, Fastify cannot even load.
 */
export const SUPPORTED_NODE = '^20.19.0 || >=22.12.0';

export function nodeSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major === 20) return minor >= 19;
  if (major === 22) return minor >= 12;
  return major >= 23;
}

/** The one line an unsupported Node gets, instead of a stack trace from deep in a dependency. */
export function unsupportedNodeMessage(version: string = process.versions.node): string {
  return `reelay: Node.js ${SUPPORTED_NODE} is needed, and this is ${version}. See "Node versions" in the README.`;
}
