import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The library's layers, lowest first. A file may import from its own folder and from lower layers
 * only; client, worker and job-server are siblings and do not import each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['common'],
  ['protocol'],
  ['connection'],
  ['client', 'worker', 'job-server'],
  ['results'],
  ['metrics'],
  ['dashboard'],
  ['nest'],
  ['nest/module'],
  ['cli'],
  ['.'], // lib/index.ts: the public entry point
];

// Jest runs from the repository root (this suite runs as an ES module, without __dirname).
const LIB = resolve(process.cwd(), 'lib');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The folder of a file relative to lib/, e.g. `nest/module`. */
function folderOf(file: string): string {
  return relative(LIB, dirname(file)) || '.';
}

function layerOf(file: string): number {
  const folder = folderOf(file);
  const layer = LAYERS.findIndex((names) => names.includes(folder));
  if (layer === -1) throw new Error(`lib/${relative(LIB, file)} is in no layer: add its folder to LAYERS`);
  return layer;
}

/** Relative imports and re-exports of a file (`import type` included), resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/g)].map((match) => match[1]);
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
}

const files = sourceFiles(LIB);

/**
 * The strongly connected components of more than one file (Tarjan's algorithm): each is a set of
 * files that reach each other through imports, i.e. an import cycle. `import type` counts: a type
 * import is erased at run time but still ties the two files together, which is what a cycle
 * costs (neither file can be read, changed or tested without the other).
 */
function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, counter);
    lowLink.set(file, counter);
    counter++;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!index.has(target)) {
        visit(target);
        lowLink.set(file, Math.min(lowLink.get(file)!, lowLink.get(target)!));
      } else if (onStack.has(target)) {
        lowLink.set(file, Math.min(lowLink.get(file)!, index.get(target)!));
      }
    }
    if (lowLink.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    const importsItself = graph.get(file)?.includes(file) ?? false;
    if (component.length > 1 || importsItself) cycles.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return cycles;
}

describe('lib/ layers', () => {
  it('every import points to the same folder or a lower layer', () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const target of importsOf(file)) {
        if (folderOf(target) === folderOf(file)) continue;
        if (layerOf(target) >= layerOf(file)) upward.push(`lib/${relative(LIB, file)} imports lib/${relative(LIB, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('every import resolves to a file in lib/', () => {
    const missing = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => !files.includes(target))
        .map((target) => `lib/${relative(LIB, file)} imports ${relative(LIB, target)}`),
    );
    expect(missing).toEqual([]);
  });

  it('no file reaches itself through imports (no import cycle)', () => {
    const graph = new Map(files.map((file) => [file, importsOf(file)]));
    const cycles = importCycles(graph).map((cycle) => cycle.map((file) => `lib/${relative(LIB, file)}`).join(' <-> '));
    expect(cycles).toEqual([]);
  });

  it('the cycle check finds a cycle of three files and a file that imports itself, and no cycle in a chain', () => {
    const cycles = importCycles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a', 'd']],
        ['d', []],
        ['e', ['e']],
        ['f', ['d']],
      ]),
    );
    expect(cycles).toEqual([['a', 'b', 'c'], ['e']]);
  });
});
