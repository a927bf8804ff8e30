/** A failure the user can fix; the CLI prints its message without a stack trace. */
export class CliError extends Error {
  override readonly name: string = "CliError";
}
