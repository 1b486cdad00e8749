import { tableTopicRoutes, type TableRules } from '../extractor/governance/index.ts';

/** The Kafka / Pub/Sub topic when neither `--topic` nor a route names one. */
export const DEFAULT_TOPIC = 'tag-connector.events';

/**
 * Picks an event's topic from `topicRoutes` (config): an exact event type (`task.created`) first, then a
 * table (`public.tasks`), then a type prefix (`task.*`, longest first), else the default topic.
 */
export function topicRouter(
  routes: Readonly<Record<string, string>>,
  defaultTopic: string,
): (event: { type: string; table: string }) => string {
  const route = topicRoute(routes, defaultTopic);
  return (e) => route(e.type, e.table);
}

/** topicRouter by an event's type and table (packed events have no object to pass). */
export function topicRoute(
  routes: Readonly<Record<string, string>>,
  defaultTopic: string,
): (type: string, table: string) => string {
  const entries = Object.entries(routes);
  if (entries.length === 0) return () => defaultTopic;
  const exact = new Map(entries.filter(([k]) => !k.endsWith('*')));
  const prefixes = entries
    .filter(([k]) => k.endsWith('*'))
    .map(([k, v]) => [k.slice(0, -1), v] as const)
    .sort((a, b) => b[0].length - a[0].length);
  return (type, table) => {
    const byType = exact.get(type);
    if (byType) return byType;
    const byTable = exact.get(table);
    if (byTable) return byTable;
    for (const [prefix, topic] of prefixes) if (type.startsWith(prefix)) return topic;
    return defaultTopic;
  };
}

/** Every topic a router can return (to create them up front). */
export function routedTopics(routes: Readonly<Record<string, string>>, defaultTopic: string): string[] {
  return [...new Set([defaultTopic, ...Object.values(routes)])];
}

/** The routes of a config: `topicRoutes` and the tables' own topics (`tables.<t>.topic`), which win. */
export function configRoutes(c: {
  topicRoutes: Readonly<Record<string, string>>;
  tableRules: TableRules;
}): Record<string, string> {
  return { ...c.topicRoutes, ...tableTopicRoutes(c.tableRules) };
}
