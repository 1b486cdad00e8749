export class KafkaSinkError extends Error {
  readonly code = 'KAFKA_SINK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaSinkError';
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KafkaSinkError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export function describe(err: unknown): string {
  const e = err as Error & { errors?: Error[]; code?: string };
  const inner = e.errors?.length ? `: ${e.errors.map((x) => x.message).join('; ')}` : '';
  return `${e.code ? `[${e.code}] ` : ''}${e.message}${inner}`;
}

/** True when `err` or one of the errors it aggregates is the Kafka error `apiId`. */
export function hasKafkaError(err: unknown, apiId: string): boolean {
  const e = err as { apiId?: string; errors?: unknown[] } | undefined;
  return (
    !!e && (e.apiId === apiId || (Array.isArray(e.errors) && e.errors.some((x) => hasKafkaError(x, apiId))))
  );
}
