/**
 * A large text to count words in, made up on the spot (the same every time): `paragraphs`
 * paragraphs of sentences drawn from a small vocabulary, so the counts are easy to check.
 */
const VOCABULARY = [
  'gearman',
  'job',
  'worker',
  'client',
  'queue',
  'result',
  'batch',
  'nest',
  'server',
  'chunk',
  'the',
  'a',
  'runs',
  'waits',
];

export function sampleText(paragraphs: number): string[] {
  let seed = 7;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  return Array.from({ length: paragraphs }, () => Array.from({ length: 40 }, () => VOCABULARY[next() % VOCABULARY.length]).join(' '));
}
