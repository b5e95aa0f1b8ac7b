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

/** Relative imports and re-exports of a file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/g)].map((match) => match[1]);
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
}

const files = sourceFiles(LIB);

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
});
