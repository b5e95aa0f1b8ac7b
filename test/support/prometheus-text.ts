/** One sample of a Prometheus text exposition: `name{label="value",...} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;

/** Parses the text format (version 0.0.4): comment lines are checked for shape, samples returned. Throws on a malformed line. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      if (!/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*/.test(line)) throw new Error(`Malformed comment line: ${line}`);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`Malformed sample line: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = match[2] ?? '';
    let consumed = 0;
    for (const label of labelText.matchAll(LABEL)) {
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
      consumed += label[0].length;
    }
    if (consumed !== labelText.length) throw new Error(`Malformed labels: ${line}`);
    const value = match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3]);
    // prom-client writes NaN as `Nan`; Prometheus reads it in any case.
    if (Number.isNaN(value) && !/^nan$/i.test(match[3])) throw new Error(`Malformed value: ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/** The value of the one sample with this name whose labels include `labels`; undefined when there is none. Throws when several match. */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
