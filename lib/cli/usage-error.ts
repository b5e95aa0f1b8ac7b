/** A bad command line: the message is shown with the command's usage, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
