// Imported first by the CLI, before anything that might not load on an unsupported Node.
import { nodeSupported, unsupportedNodeMessage } from './node-version.js';

if (!nodeSupported()) {
  console.error(unsupportedNodeMessage());
  process.exit(2);
}
