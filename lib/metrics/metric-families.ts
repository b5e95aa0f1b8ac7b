/**
 * Counters, gauges and histograms kept as plain numbers and handed to a prom-client registry at
 * scrape time. prom-client's own metric classes hash their labels on every update (150-350 ns an
 * update, several per job); here a job's updates go to series objects looked up once per function,
 * a few nanoseconds each, so that metrics stay far below the cost of a round trip. A family has
 * what a prom-client registry reads from a metric (`name`, `help`, `type`, `aggregator`, `get()`,
 * `reset()`), so prom-client formats it like its own, for both its text formats.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One value as a prom-client registry reads it. */
export interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

export interface CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly aggregator: 'sum';
  readonly values: MetricValue[];
}

abstract class Family<Series> {
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { readonly labels: readonly string[]; readonly series: Series }>();

  constructor(
    // Not readonly: prom-client renames counters when it writes the OpenMetrics format.
    public name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  abstract readonly type: MetricType;

  /** The series of these label values (in `labelNames` order), made on first use. Keep it: updating it costs nothing more. */
  child(...labels: string[]): Series {
    if (labels.length !== this.labelNames.length) {
      throw new TypeError(`${this.name} takes ${this.labelNames.length} label values, got ${labels.length}`);
    }
    const key = labels.join('\0');
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels, series: this.newSeries() };
      this.series.set(key, entry);
    }
    return entry.series;
  }

  /** What prom-client's registry reads at a scrape. */
  async get(): Promise<CollectedMetric> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.values() };
  }

  /** Back to zero (prom-client's `resetMetrics()`); series objects handed out stay valid. */
  abstract reset(): void;

  protected labelsOf(values: readonly string[]): Record<string, string> {
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, index) => (labels[name] = values[index]));
    return labels;
  }

  protected abstract newSeries(): Series;
  protected abstract values(): Promise<MetricValue[]> | MetricValue[];
}

/** A count: `series.value++`. */
export interface CounterSeries {
  value: number;
}

export class CounterFamily extends Family<CounterSeries> {
  readonly type = 'counter';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    /** The totals, read at scrape time from what already counts them; replaces the series. */
    private readonly read?: () => [labels: string[], value: number][],
  ) {
    super(name, help, labelNames);
  }

  reset(): void {
    for (const { series } of this.series.values()) series.value = 0;
  }

  protected newSeries(): CounterSeries {
    if (this.read) throw new TypeError(`${this.name} is read at scrape time`);
    return { value: 0 };
  }

  protected values(): MetricValue[] {
    if (this.read) return this.read().map(([labels, value]) => ({ labels: this.labelsOf(labels), value }));
    return [...this.series.values()].map(({ labels, series }) => ({ labels: this.labelsOf(labels), value: series.value }));
  }
}

/** A value that goes up and down: `series.value` set, or increased and decreased. */
export interface GaugeSeries {
  value: number;
}

/** A gauge: series set by hand, or (with `read`) values read at scrape time. */
export class GaugeFamily extends Family<GaugeSeries> {
  readonly type = 'gauge';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    /** The current values, as label values (in `labelNames` order) and a number; replaces the series. */
    private readonly read?: () => Promise<[labels: string[], value: number][]> | [labels: string[], value: number][],
  ) {
    super(name, help, labelNames);
  }

  reset(): void {
    for (const { series } of this.series.values()) series.value = 0;
  }

  protected newSeries(): GaugeSeries {
    if (this.read) throw new TypeError(`${this.name} is read at scrape time`);
    return { value: 0 };
  }

  protected async values(): Promise<MetricValue[]> {
    if (!this.read) return [...this.series.values()].map(({ labels, series }) => ({ labels: this.labelsOf(labels), value: series.value }));
    return (await this.read()).map(([labels, value]) => ({ labels: this.labelsOf(labels), value }));
  }
}

/** Observations in cumulative buckets, with their sum and count. */
export class HistogramSeries {
  /** Observations ≤ each bound (not yet cumulative), then above the last. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]) index++;
    this.counts[index]++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((bound, index) => !Number.isFinite(bound) || (index > 0 && bound <= buckets[index - 1]))) {
      throw new TypeError(`${name} needs buckets in increasing order, got ${JSON.stringify(buckets)}`);
    }
    this.bounds = [...buckets];
  }

  reset(): void {
    for (const { series } of this.series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  protected newSeries(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected values(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const { labels: labelValues, series } of this.series.values()) {
      const labels = this.labelsOf(labelValues);
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += series.counts[index];
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: series.count });
    }
    return values;
  }
}
