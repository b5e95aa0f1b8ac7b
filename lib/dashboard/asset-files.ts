import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The page's files, served as they are: no build step, no framework. */
export const ASSET_TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/**
 * The folder of this compiled file. The CommonJS build has `__dirname`; the ES build cannot name
 * `import.meta` in a file both builds compile, so it reads its own file name from a call site,
 * which V8 gives as a `file:` URL for an ES module.
 */
function thisDirectory(): string {
  if (typeof __dirname === 'string') return __dirname;
  const original = Error.prepareStackTrace;
  let file: string | undefined;
  try {
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const callSites = new Error().stack as unknown as NodeJS.CallSite[];
    file = callSites[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = original;
  }
  if (!file) throw new Error('The dashboard cannot find its own files');
  return dirname(file.startsWith('file:') ? fileURLToPath(file) : file);
}

/** The page's files, read once: `assets/` beside this file (the build copies it into both dist builds). */
export function loadAssets(directory = join(thisDirectory(), 'assets')): Map<string, Buffer> {
  return new Map(Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(join(directory, name))]));
}
