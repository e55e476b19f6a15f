// Option parsing as a pure function (issue 15): each rule of the command line
// checked in this process, on both parsers (the quick util.parseArgs path and
// yargs). test/cli.test.ts checks the same rules as users meet them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, StartError } from '../src/cli/exit.js';
import { parseOptions, type Options } from '../src/cli/options.js';
import { EXCHANGE_URL_ENV } from '../src/credential/oidc-config.js';

// A flag only yargs reads (an inline boolean), with no effect on the options.
const VIA_YARGS = '--http-shutdown=false';

async function refused(argv: string[], exitCode: number, message?: RegExp, env: NodeJS.ProcessEnv = {}): Promise<StartError> {
  let caught: unknown;
  await parseOptions(argv, env).catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof StartError, `${JSON.stringify(argv)} was accepted`);
  assert.equal(caught.exitCode, exitCode, `${JSON.stringify(argv)}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Both parsers give the same options for `argv`. */
async function both(argv: string[]): Promise<Options> {
  const quick = await parseOptions(argv, {});
  assert.deepEqual(await parseOptions([...argv, VIA_YARGS], {}), quick, JSON.stringify(argv));
  return quick;
}

describe('defaults and values', () => {
  test('no flags: the documented defaults', async () => {
    const o = await both([]);
    assert.equal(o.port, 0);
    assert.equal(o.serverInfo, undefined);
    assert.equal(o.httpShutdown, false);
    assert.deepEqual(o.allowHosts, []);
    assert.equal(o.upstream.secure, true);
    assert.equal(o.maxHeadBytes, 65536);
    assert.equal(o.headTimeoutMs, 30_000);
    assert.equal(o.idleTimeoutMs, 120_000);
    assert.equal(o.maxConnections, 512);
    assert.equal(o.connectTimeoutMs, 15_000);
    assert.equal(o.authHeader, 'authorization');
    assert.equal(o.dumpDir, undefined);
    assert.equal(o.oidc, null);
  });

  test('seconds become milliseconds; --flag=value and --flag value mean the same', async () => {
    const o = await both(['--head-timeout', '7', '--idle-timeout=8', '--connect-timeout', '9', '--port=4000', '--max-connections', '3']);
    assert.deepEqual([o.headTimeoutMs, o.idleTimeoutMs, o.connectTimeoutMs, o.port, o.maxConnections], [7000, 8000, 9000, 4000, 3]);
  });

  test('--allow-host is repeatable, in order', async () => {
    assert.deepEqual((await both(['--allow-host', 'a.example', '--allow-host=b.example:8080'])).allowHosts, ['a.example', 'b.example:8080']);
  });

  test('--http-shutdown, --auth-header api-key, --server-info, --dump-dir', async () => {
    const o = await parseOptions(['--http-shutdown', '--auth-header', 'api-key', '--server-info', 'f.json', '--dump-dir', 'd'], {});
    assert.deepEqual([o.httpShutdown, o.authHeader, o.serverInfo, o.dumpDir], [true, 'api-key', 'f.json', 'd']);
  });
});

describe('integers: digits only, inside the range, exit 2', () => {
  const ranges: [string, number, number][] = [
    ['port', 0, 65535],
    ['max-head-bytes', 1024, 16 * 1024 * 1024],
    ['head-timeout', 1, 3600],
    ['idle-timeout', 1, 86400],
    ['max-connections', 1, 100000],
    ['connect-timeout', 1, 600],
  ];
  for (const [flag, min, max] of ranges) {
    test(`--${flag} takes ${min} to ${max}`, async () => {
      await both([`--${flag}`, String(min)]);
      await both([`--${flag}`, String(max)]);
      for (const tail of [[], [VIA_YARGS]]) {
        for (const bad of [String(min - 1), String(max + 1), '0x10', '1e3', '1.5', ' 5', '']) {
          await refused([`--${flag}=${bad}`, ...tail], EXIT_USAGE, new RegExp(`^--${flag} must be an integer from ${min} to ${max}, got `));
        }
      }
    });
  }
});

describe('usage errors: exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown flag', ['--bogus'], /Unknown argument: bogus \(see --help\)$/],
    ['a flag given twice', ['--port', '1', '--port', '2'], /^--port given more than once$/],
    ['a number without its value', ['--head-timeout'], /Not enough arguments following: head-timeout/],
    ['a positional argument', ['extra'], /Unknown argument: extra/],
    ['an empty --server-info', ['--server-info='], /^--server-info needs a file name$/],
    ['an empty --dump-dir', ['--dump-dir='], /^--dump-dir needs a directory name$/],
    ['an unknown --auth-header', ['--auth-header', 'x-api-key'], /^--auth-header must be one of authorization, api-key, got "x-api-key"$/],
    ['a wildcard --allow-host', ['--allow-host', '*.example'], /^--allow-host "\*\.example" /],
  ];
  for (const [name, argv, message] of cases) test(name, () => refused(argv, EXIT_USAGE, message).then(() => {}));
});

describe('a bad --upstream-url: exit 1, as the original', () => {
  for (const url of ['/v1/responses', 'ftp://example.com/v1/responses', 'https://user:pw@example.com/v1/responses', 'https://example.com/v1/responses#frag']) {
    test(url, () => refused(['--upstream-url', url], EXIT_FAILURE).then(() => {}));
  }
});

describe('help and version: exit 0, text for stdout', () => {
  test('--help and -h wrap to the width given', async () => {
    for (const flag of ['--help', '-h']) {
      let caught: unknown;
      await parseOptions([flag], {}, () => 50).catch((err: unknown) => (caught = err));
      assert.ok(caught instanceof StartError);
      assert.equal(caught.exitCode, EXIT_OK);
      assert.match(caught.message, /^Usage: codex-responses-api-proxy \[OPTIONS\] < KEY\n/);
      assert.match(caught.message, /\n$/);
      for (const line of caught.message.split('\n')) assert.ok(line.length <= 50, line);
    }
  });

  test('--version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const err = await refused([flag], EXIT_OK);
      assert.match(err.message, /^\d+\.\d+\.\d+\n$/);
    }
  });
});

describe('GitHub OIDC flags', () => {
  const ALL = ['--github-oidc', '--oidc-audience', 'aud', '--identity-provider-id', 'idp', '--service-account-id', 'sa', '--github-oidc-request-url', 'https://token.example/req?x=1'];
  const without = (flag: string): string[] => {
    const i = ALL.indexOf(flag);
    return flag === '--github-oidc' ? ALL.slice(1) : [...ALL.slice(0, i), ...ALL.slice(i + 2)];
  };

  test('all five give the config, with the exchange URL from the test hook when set', async () => {
    const o = await parseOptions(ALL, {});
    assert.deepEqual({ ...o.oidc!, requestUrl: o.oidc!.requestUrl.href, exchangeUrl: undefined }, { audience: 'aud', identityProviderId: 'idp', serviceAccountId: 'sa', requestUrl: 'https://token.example/req?x=1', exchangeUrl: undefined });
    const hooked = await parseOptions([...ALL, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], { [EXCHANGE_URL_ENV]: 'https://127.0.0.1:1/exchange' });
    assert.equal(hooked.oidc!.exchangeUrl.href, 'https://127.0.0.1:1/exchange');
  });

  test('some but not all: exit 2 naming the missing ones', async () => {
    for (const flag of ['--github-oidc', '--oidc-audience', '--identity-provider-id', '--service-account-id', '--github-oidc-request-url']) {
      await refused(without(flag), EXIT_USAGE, new RegExp(`missing: ${flag}$`));
    }
  });

  test('with --auth-header api-key: exit 2', () => refused([...ALL, '--auth-header', 'api-key'], EXIT_USAGE, /cannot be combined/).then(() => {}));

  test("the original's run-time refusals: exit 1", async () => {
    await refused([...ALL, '--upstream-url', 'https://example.com/v1/responses'], EXIT_FAILURE, /requires the default OpenAI Responses endpoint/);
    await refused([...without('--oidc-audience'), '--oidc-audience', '  '], EXIT_FAILURE, /nonempty --oidc-audience/);
    await refused([...without('--github-oidc-request-url'), '--github-oidc-request-url', 'not a url'], EXIT_FAILURE, /^invalid GitHub OIDC request URL$/);
    await refused([...without('--github-oidc-request-url'), '--github-oidc-request-url', 'http://token.example/'], EXIT_FAILURE, /must be HTTPS/);
    await refused(ALL, EXIT_FAILURE, new RegExp(`^${EXCHANGE_URL_ENV} must be`), { [EXCHANGE_URL_ENV]: 'http://127.0.0.1:1/' });
  });
});
