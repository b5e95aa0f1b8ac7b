import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from '../../lib/metrics/metric-families.js';

/** The families must read exactly like prom-client's own metrics, in both of its formats. */
describe('metric families in a prom-client registry', () => {
  const observations = [0, 0.0004, 0.001, 0.003, 0.02, 0.5, 2, 75];
  const buckets = [0.001, 0.01, 0.1, 1, 10];

  function expose(contentType: typeof Registry.PROMETHEUS_CONTENT_TYPE | typeof Registry.OPENMETRICS_CONTENT_TYPE, ours: boolean) {
    const registry = new Registry();
    registry.setContentType(contentType as never);
    if (ours) {
      const counter = new CounterFamily('jobs_total', 'Jobs.', ['function', 'mode']);
      const gauge = new GaugeFamily('in_flight', 'In flight.', ['function']);
      const histogram = new HistogramFamily('duration_seconds', 'Duration.', ['function'], buckets);
      for (const family of [counter, gauge, histogram]) registry.registerMetric(family as never);
      counter.child('resize', 'foreground').value += 3;
      counter.child('email', 'background').value++;
      gauge.child('resize').value = 2;
      for (const value of observations) histogram.child('resize').observe(value);
      histogram.child('email').observe(0.05);
    } else {
      const counter = new Counter({ name: 'jobs_total', help: 'Jobs.', labelNames: ['function', 'mode'], registers: [registry] });
      const gauge = new Gauge({ name: 'in_flight', help: 'In flight.', labelNames: ['function'], registers: [registry] });
      const histogram = new Histogram({
        name: 'duration_seconds',
        help: 'Duration.',
        labelNames: ['function'],
        buckets,
        registers: [registry],
      });
      counter.labels('resize', 'foreground').inc(3);
      counter.labels('email', 'background').inc();
      gauge.labels('resize').set(2);
      for (const value of observations) histogram.labels('resize').observe(value);
      histogram.labels('email').observe(0.05);
    }
    return registry.metrics();
  }

  it('the Prometheus text format is byte for byte prom-client’s', async () => {
    expect(await expose(Registry.PROMETHEUS_CONTENT_TYPE, true)).toBe(await expose(Registry.PROMETHEUS_CONTENT_TYPE, false));
  });

  it('so is the OpenMetrics format', async () => {
    expect(await expose(Registry.OPENMETRICS_CONTENT_TYPE, true)).toBe(await expose(Registry.OPENMETRICS_CONTENT_TYPE, false));
  });

  it('reset() zeroes the series, which stay usable; a gauge read at scrape time reports what it reads', async () => {
    const registry = new Registry();
    const counter = new CounterFamily('jobs_total', 'Jobs.', ['function']);
    const read = new GaugeFamily('queued', 'Queued.', ['function'], async () => [[['resize'], 7]]);
    registry.registerMetric(counter as never);
    registry.registerMetric(read as never);
    const series = counter.child('resize');
    series.value = 5;
    registry.resetMetrics();
    series.value++;
    const text = await registry.metrics();
    expect(text).toContain('jobs_total{function="resize"} 1\n');
    expect(text).toContain('queued{function="resize"} 7\n');
    expect(() => read.child('resize')).toThrow(TypeError);
    expect(() => counter.child('a', 'b')).toThrow(TypeError);
    expect(() => new HistogramFamily('h', 'h', [], [1, 1])).toThrow(TypeError);
  });
});
