import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';

/**
 * Every ```ts block of README.md, CONTRIBUTING.md and docs/*.md, compiled as a user's app would
 * compile it: one module per block in an ES-module package (`"type": "module"`), strict,
 * `module: nodenext`, `isolatedModules` and `verbatimModuleSyntax` (what fresh Nest 12 projects
 * use, and stricter), importing `nestjs-gearman` as the built package (`npm test` builds dist/
 * first) through its package.json `exports`. The block marked `<!-- snippet: run -->` (the
 * README's first app) then runs: a real HTTP → Gearman → handler round trip on the embedded job
 * server, on free ports.
 *
 * A block opts out only with `<!-- snippet: skip, <reason> -->` on the line before its fence.
 */
const repo = process.cwd();
const MARKER = /^<!--\s*snippet:\s*(run|skip)\b[,:\s]*(.*?)\s*-->$/;

interface Snippet {
  /** e.g. docs/module.md:42 (the line of the opening fence). */
  readonly where: string;
  readonly file: string;
  readonly firstLine: number;
  readonly code: string;
  readonly mark: 'run' | 'skip' | undefined;
  readonly reason: string;
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(repo, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name));
  return ['README.md', 'CONTRIBUTING.md', ...docs.sort()];
}

function snippetsOf(file: string): Snippet[] {
  const lines = readFileSync(join(repo, file), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue;
    const end = lines.findIndex((line, j) => j > i && line.startsWith('```'));
    if (end === -1) throw new Error(`${file}:${i + 1}: a code block that never closes`);
    const marker = MARKER.exec((lines[i - 1] ?? '').trim());
    snippets.push({
      where: `${file}:${i + 1}`,
      file,
      firstLine: i + 2,
      code: lines.slice(i + 1, end).join('\n') + '\n',
      mark: marker?.[1] as Snippet['mark'],
      reason: marker?.[2] ?? '',
    });
    i = end;
  }
  return snippets;
}

/** A throwaway app folder: the snippets as modules, the package and Nest linked into node_modules. */
function appWith(snippets: Snippet[]): { dir: string; sources: Map<string, Snippet> } {
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-gearman-snippets-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'snippets', private: true, type: 'module' }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repo, join(dir, 'node_modules', 'nestjs-gearman'));
  for (const dependency of ['@nestjs', '@types', 'rxjs', 'reflect-metadata']) {
    symlinkSync(join(repo, 'node_modules', dependency), join(dir, 'node_modules', dependency));
  }
  mkdirSync(join(dir, 'src'));
  const sources = new Map<string, Snippet>();
  for (const snippet of snippets) {
    const name = join(dir, 'src', `${snippet.where.replace(/[/.:]/g, '_')}.ts`);
    writeFileSync(name, snippet.code);
    sources.set(name, snippet);
  }
  return { dir, sources };
}

const compilerOptions: ts.CompilerOptions = {
  strict: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  isolatedModules: true,
  verbatimModuleSyntax: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  skipLibCheck: true,
  moduleDetection: ts.ModuleDetectionKind.Force,
};

function describeDiagnostic(diagnostic: ts.Diagnostic, sources: Map<string, Snippet>): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    ');
  const snippet = diagnostic.file && sources.get(diagnostic.file.fileName);
  if (!diagnostic.file || diagnostic.start === undefined || !snippet) return `TS${diagnostic.code}: ${message}`;
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  return `${snippet.file}:${snippet.firstLine + line}:${character + 1} TS${diagnostic.code}: ${message}`;
}

/** Runs the compiled first app with free ports, calls it over HTTP, then stops it with SIGTERM. */
async function runFirstApp(script: string, cwd: string): Promise<{ reply: unknown; output: string; exit: string }> {
  const child = spawn(process.execPath, [script], { cwd, env: { ...process.env, PORT: '0', GEARMAN_PORT: '0' } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `exit code ${code}`)));
  const waitFor = async (pattern: RegExp): Promise<RegExpExecArray> => {
    for (let waited = 0; waited < 20000; waited += 50) {
      const match = pattern.exec(output);
      if (match) return match;
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`The first app never printed ${pattern}; its output:\n${output}`);
  };
  try {
    const [, url] = await waitFor(/Listening on (http\S+)/);
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ann', email: 'ann@example.com' }),
    });
    const reply: unknown = await response.json();
    await waitFor(/Welcome e-mail to ann@example\.com/);
    child.kill('SIGTERM');
    return { reply, output, exit: await exited };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe('the code in the docs', () => {
  const snippets = markdownFiles().flatMap(snippetsOf);
  const compiled = snippets.filter((snippet) => snippet.mark !== 'skip');
  let app: { dir: string; sources: Map<string, Snippet> };
  let program: ts.Program;

  beforeAll(() => {
    app = appWith(compiled);
    program = ts.createProgram([...app.sources.keys()], {
      ...compilerOptions,
      outDir: join(app.dir, 'out'),
      rootDir: join(app.dir, 'src'),
    });
  });
  afterAll(() => rmSync(app.dir, { recursive: true, force: true }));

  it('finds the snippets, and every opt-out says why', () => {
    expect(compiled.length).toBeGreaterThanOrEqual(15);
    expect(snippets.filter((snippet) => snippet.mark === 'run').map((snippet) => snippet.file)).toEqual(['README.md']);
    const unexplained = snippets.filter((snippet) => snippet.mark === 'skip' && snippet.reason.length < 10).map((s) => s.where);
    expect(unexplained).toEqual([]);
  });

  it('every ts block compiles as a strict ES-module app against the built package', () => {
    const errors = ts.getPreEmitDiagnostics(program).map((diagnostic) => describeDiagnostic(diagnostic, app.sources));
    expect(errors).toEqual([]);
  });

  it("the README's first app runs: an HTTP call becomes a Gearman job and its reply, and an event reaches its handler", async () => {
    const emitted = program.emit();
    expect(emitted.emitSkipped).toBe(false);
    const [source] = [...app.sources].find(([, snippet]) => snippet.mark === 'run') ?? [];
    expect(source).toBeDefined();
    const script = join(app.dir, 'out', relative(join(app.dir, 'src'), source!).replace(/\.ts$/, '.js'));
    const { reply, output, exit } = await runFirstApp(script, app.dir);
    expect(reply).toEqual({ id: expect.any(String), name: 'Ann', email: 'ann@example.com' });
    // enableShutdownHooks(): Nest closes the app, then ends the process with the signal it got.
    expect(exit).toBe('SIGTERM');
    expect(output).not.toMatch(/error/i);
  }, 60000);
});
