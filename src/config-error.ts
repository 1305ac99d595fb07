/** A setting is missing or wrong: the process stops with exit code 2 and this message. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
