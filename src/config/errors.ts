/** A configuration value that failed validation. The CLI turns it into exit code 2. */
export class ConfigError extends Error {
  readonly field: string;
  readonly source: string;
  constructor(field: string, source: string, message: string) {
    super(`invalid configuration: ${field} (${source}): ${message}`);
    this.name = 'ConfigError';
    this.field = field;
    this.source = source;
  }
}
