// How start-up ends, in one place: the exit codes, and the one error type
// every start-up step's failure becomes before start.ts prints it and exits.

/** The name every line of ours on stderr starts with. */
export const NAME = 'codex-responses-api-proxy';

/** `/shutdown`, --help and --version. */
export const EXIT_OK = 0;
/** A failure at run time: the key, the port, server-info, --dump-dir, a bad --upstream-url (as the original), OIDC. */
export const EXIT_FAILURE = 1;
/** A usage error, as clap's: an unknown or repeated flag, a value out of range, the proxy and CA environment. */
export const EXIT_USAGE = 2;

export type ExitCode = typeof EXIT_OK | typeof EXIT_FAILURE | typeof EXIT_USAGE;

/**
 * Why start-up ends here. With EXIT_FAILURE or EXIT_USAGE, the message is
 * one line for stderr, without the name. With EXIT_OK (--help, --version,
 * as clap's DisplayHelp and DisplayVersion "errors"), it is the text for
 * stdout, printed as it is.
 */
export class StartError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}
