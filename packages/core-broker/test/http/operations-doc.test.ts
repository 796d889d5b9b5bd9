import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { BrokerMetrics } from '../../src/server/broker-metrics';

const DOC = readFileSync(path.join(__dirname, '../../../../docs/operations.md'), 'utf8');

test('every broker metric is described in docs/operations.md', async () => {
  const names = (await new BrokerMetrics().registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((name) => !/^rocketnest_(process|nodejs)_/.test(name));
  // the scan finds what it should (an empty registry would pass vacuously)
  expect(names).toEqual(
    expect.arrayContaining(['rocketnest_messages_in_total', 'rocketnest_consumer_lag_messages']),
  );
  expect(names.filter((name) => !DOC.includes(`\`${name}\``))).toEqual([]);
});

test('the Grafana dashboard is valid JSON and queries only metrics that exist', async () => {
  const dashboard = JSON.parse(
    readFileSync(path.join(__dirname, '../../../../docs/grafana-dashboard.json'), 'utf8'),
  ) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  const names = new Set((await new BrokerMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
  const used = dashboard.panels.flatMap((p) =>
    p.targets.flatMap((t) => t.expr.match(/rocketnest_[a-z_]+/g) ?? []),
  );
  expect(used.length).toBeGreaterThan(10);
  expect(used.map((n) => n.replace(/_(bucket|sum|count)$/, '')).filter((n) => !names.has(n))).toEqual([]);
});
