// The public API of the BUILT package, entry by entry: the names a CommonJS `require` and an ES
// `import` get at run time (`values`), and the names only the type declarations add (`types`).
// `node test/package/public-api.mjs` prints it; `--write` records it in public-api.json, which
// test/package/public-api.spec.ts compares with every build. Run `npm run api:update` (it builds
// first) after changing lib/index.ts or lib/protocol/index.ts on purpose, and commit the JSON.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const snapshot = join(repo, 'test', 'package', 'public-api.json');
const require = createRequire(join(repo, 'package.json'));
const pkg = require('./package.json');

/** The package's entries (`nestjs-gearman`, `nestjs-gearman/protocol`) and their files, read from package.json's exports. */
function entries() {
  return Object.entries(pkg.exports)
    .filter(([subpath]) => subpath !== './package.json')
    .map(([subpath, conditions]) => ({ name: pkg.name + subpath.slice(1), esm: conditions.import, cjs: conditions.require }));
}

/** Every name the declaration file exports, values and types alike. */
function declaredNames(program, file) {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`${file} is missing: run npm run build`);
  return checker.getExportsOfModule(checker.getSymbolAtLocation(source)).map((symbol) => symbol.getName());
}

function sameList(a, b) {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

export async function publicApi() {
  const list = entries();
  const declarations = list.flatMap((entry) => [join(repo, entry.esm.types), join(repo, entry.cjs.types)]);
  const program = ts.createProgram(declarations, {
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  const api = {};
  for (const entry of list) {
    const cjsValues = Object.keys(require(join(repo, entry.cjs.default))).sort();
    const esmValues = Object.keys(await import(join(repo, entry.esm.default))).sort();
    const esmDeclared = declaredNames(program, join(repo, entry.esm.types)).sort();
    const cjsDeclared = declaredNames(program, join(repo, entry.cjs.types)).sort();
    if (!sameList(cjsValues, esmValues)) {
      throw new Error(`${entry.name}: the CommonJS and ES builds export different values:\n  cjs: ${cjsValues}\n  esm: ${esmValues}`);
    }
    if (!sameList(esmDeclared, cjsDeclared)) {
      throw new Error(`${entry.name}: the CommonJS and ES declarations differ:\n  cjs: ${cjsDeclared}\n  esm: ${esmDeclared}`);
    }
    const undeclared = esmValues.filter((name) => !esmDeclared.includes(name));
    if (undeclared.length > 0) throw new Error(`${entry.name}: exported at run time but not declared: ${undeclared}`);
    api[entry.name] = { values: esmValues, types: esmDeclared.filter((name) => !esmValues.includes(name)) };
  }
  return api;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const api = JSON.stringify(await publicApi(), null, 2) + '\n';
  if (process.argv.includes('--write')) {
    writeFileSync(snapshot, api);
    console.log(`wrote ${snapshot}`);
  } else {
    process.stdout.write(api);
  }
}
