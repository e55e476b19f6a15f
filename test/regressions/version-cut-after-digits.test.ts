// Second review: a request line whose version llhttp will not speak
// (HTTP/9.9) is refused as a version (505), not as a malformed line (400),
// even when a read ends right after the version's digits.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ev, loadParser, MessageParser } from '../../src/http/parser.js';
import { b } from '../support/harness.js';

describe('a version llhttp will not speak, cut right after its digits', () => {
  test('HTTP/9.9 is refused as a version (505 path), wherever the read ends', () => {
    loadParser();
    const wire = b('POST /v1/responses HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n');
    const versionEnd = wire.indexOf('\r\n');
    // Every cut from inside the request line to just past its CRLF.
    for (let cut = 1; cut <= versionEnd + 2; cut++) {
      const p = new MessageParser('REQUEST', 65536);
      let step = p.execute(wire.subarray(0, cut), 0);
      if (step.ev === Ev.More) step = p.execute(wire.subarray(cut), 0);
      assert.equal(step.ev, Ev.Error, `cut at ${cut}`);
      assert.equal(p.versionRefused, true, `cut at ${cut}: refused as a malformed line, not as a version`);
      p.destroy();
    }
  });
});
