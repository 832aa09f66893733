/**
 * Webhook verification: for every scheme a valid delivery, tampering, wrong and rotated secrets,
 * several signatures, timestamps out of tolerance, missing and malformed headers, header case; and
 * per scheme at least one signature computed outside this code (a published example or openssl),
 * so a bug shared by the signer and the verifier cannot pass. Also the scheme validator.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/core/errors.js';
import {
  checkWebhookSecrets,
  parseWebhookScheme,
  resolveWebhookScheme,
  signWebhook,
  verifyWebhook,
  WebhookFailureCode,
  type WebhookHeaders,
  type WebhookScheme,
  type WebhookVerification,
} from '../src/triggers/index.js';

const NOW = new Date(1_700_000_000_000);
const NOW_S = 1_700_000_000;
const BODY = Buffer.from('{"id":"evt_1","amount":42}');
const TAMPERED = Buffer.from('{"id":"evt_1","amount":43}');

interface SchemeCase {
  name: string;
  scheme: WebhookScheme;
  secret: string;
  other: string;
  /** The header that carries the signatures (lower-case). */
  signatureHeader: string;
  /** Headers whose absence refuses the delivery. */
  required: string[];
  timestamped: boolean;
  deliveryId: string | undefined;
  /** Header values that must be refused as malformed, and a part of the message each must have. */
  malformed: Array<[header: string, value: string, says: string]>;
}

const hex64 = 'ab'.repeat(32);
const cases: SchemeCase[] = [
  {
    name: 'standard',
    scheme: resolveWebhookScheme('standard'),
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    other: 'whsec_c2Vjb25kIGtleSBmb3Igcm90YXRpb24gdGVzdHM=',
    signatureHeader: 'webhook-signature',
    required: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
    timestamped: true,
    deliveryId: 'dlv-1',
    malformed: [
      ['webhook-signature', 'v1,', 'expected base64 (32 bytes), got nothing'],
      ['webhook-signature', 'v1,dawfeoifkpqwoekfpqoekf', 'expected a 32-byte digest in base64, got 16 bytes'],
      ['webhook-signature', 'v1,@@@@', 'not base64'],
      ['webhook-signature', 'g0hM9SsE', "is not 'v1,<base64 signature>'"],
      ['webhook-signature', 'v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==', 'has no v1 signature (1 v1a signature ignored'],
      ['webhook-timestamp', 'hello', 'header webhook-timestamp is not a Unix time in seconds (got "hello")'],
      ['webhook-timestamp', '1700000000.5', 'not a Unix time in seconds'],
      ['webhook-id', 'has space', 'header webhook-id must be 1 to 256 printable characters'],
      ['webhook-id', 'x'.repeat(257), 'header webhook-id must be 1 to 256'],
    ],
  },
  {
    name: 'github',
    scheme: resolveWebhookScheme('github'),
    secret: "It's a Secret to Everybody",
    other: 'another secret',
    signatureHeader: 'x-hub-signature-256',
    required: ['x-hub-signature-256'],
    timestamped: false,
    deliveryId: 'dlv-1',
    malformed: [
      ['x-hub-signature-256', hex64, "x-hub-signature-256 does not start with 'sha256='"],
      ['x-hub-signature-256', `sha1=${'ab'.repeat(20)}`, "does not start with 'sha256='"],
      ['x-hub-signature-256', `sha256=${'ab'.repeat(20)}`, 'expected 64 hex digits, got 40 characters'],
      ['x-hub-signature-256', `sha256=${'zz'.repeat(32)}`, 'expected 64 hex digits, got 64 characters that are not all hex'],
      ['x-github-delivery', 'a b', 'header x-github-delivery must be 1 to 256 printable characters'],
    ],
  },
  {
    name: 'stripe',
    scheme: resolveWebhookScheme('stripe'),
    secret: 'whsec_5PHg1dBmNxCnJq9sKzLh7tUa3WxYe2Rf',
    other: 'whsec_other',
    signatureHeader: 'stripe-signature',
    required: ['stripe-signature'],
    timestamped: true,
    deliveryId: 'evt_1',
    malformed: [
      ['stripe-signature', `v1=${hex64}`, 'stripe-signature has no timestamp (t=<unix seconds>)'],
      ['stripe-signature', `t=${NOW_S}`, 'stripe-signature has no v1 signature'],
      ['stripe-signature', `t=${NOW_S},v0=${hex64}`, 'has no v1 signature (only v1, HMAC-SHA256, is supported)'],
      ['stripe-signature', `t=${NOW_S},t=${NOW_S},v1=${hex64}`, 'stripe-signature has 2 timestamps'],
      ['stripe-signature', `t=soon,v1=${hex64}`, 'stripe-signature t= is not a Unix time in seconds (got "soon")'],
      ['stripe-signature', `t=${NOW_S},v1=abc`, 'stripe-signature v1: expected 64 hex digits, got 3 characters'],
      ['stripe-signature', `t=${NOW_S},${hex64}`, 'has an item that is not key=value'],
    ],
  },
  {
    name: 'hmac (sha512, base64, prefix, timestamp and id headers)',
    scheme: resolveWebhookScheme({
      type: 'hmac',
      header: 'X-Signature',
      algorithm: 'sha512',
      encoding: 'base64',
      prefix: 'sha512=',
      timestamp_header: 'X-Timestamp',
      id_header: 'X-Delivery',
    }),
    secret: 'Jefe',
    other: 'not Jefe',
    signatureHeader: 'x-signature',
    required: ['x-signature', 'x-timestamp', 'x-delivery'],
    timestamped: true,
    deliveryId: 'dlv-1',
    malformed: [
      ['x-signature', `sha256=${hex64}`, "x-signature does not start with 'sha512='"],
      ['x-signature', 'sha512=Zm9v', 'expected a 64-byte digest in base64, got 3 bytes'],
      ['x-signature', `sha512=${hex64}`, 'expected a 64-byte digest in base64, got 48 bytes'],
      ['x-timestamp', '2023-11-14T22:13:20Z', 'header x-timestamp is not a Unix time in seconds'],
    ],
  },
  {
    name: 'hmac (defaults: sha256, hex, no prefix, no timestamp)',
    scheme: resolveWebhookScheme({ type: 'hmac', header: 'X-Sig' }),
    secret: 'plain secret',
    other: 'other secret',
    signatureHeader: 'x-sig',
    required: ['x-sig'],
    timestamped: false,
    deliveryId: undefined,
    malformed: [['x-sig', 'sha256=' + hex64, 'expected 64 hex digits, got 71 characters that are not all hex']],
  },
];

function sign(c: SchemeCase, secrets: string | string[], body: Buffer = BODY, at: Date = NOW): Record<string, string> {
  return signWebhook(c.scheme, secrets, body, { id: 'dlv-1', timestamp: at });
}

function refused(result: WebhookVerification): { code: string; message: string; header?: string } {
  if (result.ok) throw new Error(`expected the delivery to be refused, but it verified: ${JSON.stringify(result)}`);
  return result;
}

/** Every message a refusal gave, to check that none carries a secret or an expected signature. */
const messages: string[] = [];
function verify(c: SchemeCase, secrets: string[], headers: WebhookHeaders, body: Buffer = BODY, now: Date = NOW): WebhookVerification {
  const result = verifyWebhook(c.scheme, secrets, headers, body, now);
  if (!result.ok) messages.push(result.message);
  return result;
}

describe.each(cases)('$name', (c) => {
  it('verifies a valid delivery and reports its id, time and secret', () => {
    const result = verify(c, [c.secret], sign(c, c.secret));
    expect(result).toEqual({
      ok: true,
      scheme: c.scheme.type,
      secretIndex: 0,
      ...(c.deliveryId ? { deliveryId: c.deliveryId } : {}),
      ...(c.timestamped ? { timestamp: NOW } : {}),
    });
  });

  it('refuses a tampered body', () => {
    const result = refused(verify(c, [c.secret], sign(c, c.secret), TAMPERED));
    expect(result.code).toBe(WebhookFailureCode.SIGNATURE_MISMATCH);
    expect(result.message).toContain(`no signature matched: the signature in ${c.signatureHeader}`);
    expect(result.header).toBe(c.signatureHeader);
  });

  it('refuses a delivery signed with another secret', () => {
    const result = refused(verify(c, [c.secret], sign(c, c.other)));
    expect(result.code).toBe(WebhookFailureCode.SIGNATURE_MISMATCH);
    expect(result.message).toContain(`the signature in ${c.signatureHeader} was not made with the configured secret`);
  });

  it('accepts the old and the new secret during a rotation, and says which matched', () => {
    const both = [c.other, c.secret];
    expect(verify(c, both, sign(c, c.other))).toMatchObject({ ok: true, secretIndex: 0 });
    expect(verify(c, both, sign(c, c.secret))).toMatchObject({ ok: true, secretIndex: 1 });
    const after = refused(verify(c, [c.secret], sign(c, c.other)));
    expect(after.code).toBe(WebhookFailureCode.SIGNATURE_MISMATCH);
    expect(refused(verify(c, ['third', 'fourth'], sign(c, c.other))).message).toContain('any of the 2 configured secrets');
  });

  it('accepts a header with several signatures when any one matches', () => {
    expect(verify(c, [c.secret], sign(c, [c.other, c.secret]))).toMatchObject({ ok: true, secretIndex: 0 });
    expect(verify(c, [c.secret], sign(c, [c.secret, c.other]))).toMatchObject({ ok: true, secretIndex: 0 });
    const none = refused(verify(c, ['third'], sign(c, [c.other, c.secret])));
    expect(none.code).toBe(WebhookFailureCode.SIGNATURE_MISMATCH);
    expect(none.message).toContain(`none of the 2 signatures in ${c.signatureHeader}`);
  });

  if (c.timestamped) {
    it('accepts a timestamp up to the tolerance away and refuses a stale or future one', () => {
      const at = (s: number): Date => new Date(NOW.getTime() + s * 1000);
      expect(verify(c, [c.secret], sign(c, c.secret, BODY, at(-300))).ok).toBe(true);
      expect(verify(c, [c.secret], sign(c, c.secret, BODY, at(300))).ok).toBe(true);

      const stale = refused(verify(c, [c.secret], sign(c, c.secret, BODY, at(-301))));
      expect(stale.code).toBe(WebhookFailureCode.TIMESTAMP_OUT_OF_TOLERANCE);
      expect(stale.message).toMatch(/ is 301 s in the past; the tolerance is 300 s/);

      const future = refused(verify(c, [c.secret], sign(c, c.secret, BODY, at(3600))));
      expect(future.code).toBe(WebhookFailureCode.TIMESTAMP_OUT_OF_TOLERANCE);
      expect(future.message).toMatch(/ is 3600 s in the future; the tolerance is 300 s/);

      // The option overrides the scheme's tolerance.
      expect(verifyWebhook(c.scheme, [c.secret], sign(c, c.secret, BODY, at(-301)), BODY, NOW, { toleranceSeconds: 600 }).ok).toBe(true);
    });

    it('refuses a timestamp changed after signing (it is part of the signed content)', () => {
      const headers = sign(c, c.secret);
      const moved = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replace(String(NOW_S), String(NOW_S + 1))]));
      expect(moved).not.toEqual(headers);
      expect(refused(verify(c, [c.secret], moved)).code).toBe(WebhookFailureCode.SIGNATURE_MISMATCH);
    });
  } else {
    it('has no timestamp, so the receiver clock does not matter', () => {
      const result = verify(c, [c.secret], sign(c, c.secret, BODY, new Date(0)), BODY, NOW);
      expect(result.ok).toBe(true);
      expect(result.ok && result.timestamp).toBe(undefined);
    });
  }

  it.each(c.required)('refuses a delivery without %s, naming it', (header) => {
    const headers: Record<string, string> = sign(c, c.secret);
    delete headers[header];
    const result = refused(verify(c, [c.secret], headers));
    expect(result).toEqual({ ok: false, code: WebhookFailureCode.HEADER_MISSING, message: `missing header ${header}`, header });
    headers[header] = '  ';
    expect(refused(verify(c, [c.secret], headers)).code).toBe(WebhookFailureCode.HEADER_MISSING);
  });

  it.each(c.malformed)('refuses %s: %j as malformed', (header, value, says) => {
    const headers = { ...sign(c, c.secret), [header]: value };
    const result = refused(verify(c, [c.secret], headers));
    expect(result.code).toBe(WebhookFailureCode.HEADER_MALFORMED);
    expect(result.message).toContain(says);
    expect(result.header).toBe(header);
  });

  it('matches header names in any case and takes array values', () => {
    const upper = Object.fromEntries(Object.entries(sign(c, c.secret)).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verify(c, [c.secret], upper).ok).toBe(true);
    const mixed = Object.fromEntries(Object.entries(sign(c, c.secret)).map(([k, v]) => [k.replace(/(^|-)([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase()), [v]]));
    expect(verify(c, [c.secret], mixed).ok).toBe(true);
  });

  it('refuses a signature header given twice with different values', () => {
    const headers: Record<string, string | string[]> = { ...sign(c, c.secret) };
    headers[c.signatureHeader] = [sign(c, c.secret)[c.signatureHeader] as string, sign(c, c.other)[c.signatureHeader] as string];
    const result = refused(verify(c, [c.secret], headers));
    expect(result.code).toBe(WebhookFailureCode.HEADER_MALFORMED);
    expect(result.message).toBe(`header ${c.signatureHeader} is given 2 times with different values; a sender sends it once`);
  });

  it('throws when the trigger has no secret, or a secret that cannot be used', () => {
    expect(() => verifyWebhook(c.scheme, [], sign(c, c.secret), BODY, NOW)).toThrow(/has no secret; configure at least one/);
    expect(() => verifyWebhook(c.scheme, [''], sign(c, c.secret), BODY, NOW)).toThrow(UserError);
  });
});

describe('refusal messages', () => {
  it('never contain a secret or a signature Swarm computed', () => {
    // Runs after the scheme suites above (vitest runs a file's tests in order).
    expect(messages.length).toBeGreaterThan(60);
    const forbidden = cases.flatMap((c) => {
      const secrets = [c.secret, c.other];
      const signatures = [sign(c, c.secret), sign(c, c.secret, TAMPERED), sign(c, c.other)].map((h) => h[c.signatureHeader] as string);
      const digests = signatures.flatMap((s) => s.split(/[\s,]+|=|v1,/).filter((p) => p.length >= 20));
      return [...secrets, ...secrets.map((s) => s.replace(/^whsec_/, '')), ...digests];
    });
    expect(forbidden.length).toBeGreaterThan(20);
    for (const message of messages) for (const secret of forbidden) expect(message).not.toContain(secret);
  });
});

describe('known-answer vectors (computed outside this code)', () => {
  it('standard: the example of the Standard Webhooks reference library', () => {
    // standard-webhooks libraries/javascript/src/webhook.test.ts, "sign function works".
    const scheme = resolveWebhookScheme('standard');
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const headers = {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    };
    const body = Buffer.from('{"test": 2432232314}');
    const at = new Date(1614265330 * 1000);
    expect(verifyWebhook(scheme, [secret], headers, body, at)).toEqual({ ok: true, scheme: 'standard', deliveryId: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: at, secretIndex: 0 });
    expect(signWebhook(scheme, secret, body, { id: headers['webhook-id'], timestamp: at })).toEqual(headers);
    // With the spec's example header: a v1a (asymmetric) entry beside the v1 one is passed over.
    const withV1a = { ...headers, 'webhook-signature': `v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== ${headers['webhook-signature']}` };
    expect(verifyWebhook(scheme, [secret], withV1a, body, at).ok).toBe(true);
  });

  it('standard: a secret without whsec_ is used as its UTF-8 bytes', () => {
    // printf '%s' 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1674087231.{"type":"contact.created"}' \
    //   | openssl dgst -sha256 -hmac 'a plain shared secret' -binary | openssl base64 -A
    const scheme = resolveWebhookScheme('standard');
    const headers = {
      'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      'webhook-timestamp': '1674087231',
      'webhook-signature': 'v1,rUNAJ8rhu/DkbdrFE47bt0utHpZdHkIjUyGmhlb+0PA=',
    };
    const body = Buffer.from('{"type":"contact.created"}');
    const at = new Date(1674087231 * 1000);
    expect(verifyWebhook(scheme, ['a plain shared secret'], headers, body, at).ok).toBe(true);
    // So a bare base64 key is not decoded: it has to be written with its whsec_ prefix.
    const reference = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    const bare = verifyWebhook(scheme, ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], reference, Buffer.from('{"test": 2432232314}'), new Date(1614265330 * 1000));
    expect(bare.ok).toBe(false);
  });

  it("github: the example in GitHub's documentation", () => {
    const scheme = resolveWebhookScheme('github');
    const headers = { 'X-Hub-Signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17', 'X-GitHub-Delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' };
    const body = Buffer.from('Hello, World!');
    expect(verifyWebhook(scheme, ["It's a Secret to Everybody"], headers, body, NOW)).toEqual({ ok: true, scheme: 'github', deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958', secretIndex: 0 });
    const upperHex = { 'x-hub-signature-256': headers['X-Hub-Signature-256'].toUpperCase().replace('SHA256=', 'sha256=') };
    expect(verifyWebhook(scheme, ["It's a Secret to Everybody"], upperHex, body, NOW)).toEqual({ ok: true, scheme: 'github', secretIndex: 0 });
    expect(signWebhook(scheme, "It's a Secret to Everybody", body, { id: 'x' })['x-hub-signature-256']).toBe(headers['X-Hub-Signature-256']);
  });

  it('stripe: the whole whsec_ secret keys the HMAC over `${t}.${body}`', () => {
    // printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac 'whsec_5PHg1dBmNxCnJq9sKzLh7tUa3WxYe2Rf'
    const scheme = resolveWebhookScheme('stripe');
    const body = Buffer.from('{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"checkout.session.completed"}');
    const header = 't=1700000000,v1=c023c6029fb9535b887701a78a7b8c6ca8fc3f401c07b634426150b00d624560';
    expect(verifyWebhook(scheme, ['whsec_5PHg1dBmNxCnJq9sKzLh7tUa3WxYe2Rf'], { 'Stripe-Signature': header }, body, NOW)).toEqual({
      ok: true,
      scheme: 'stripe',
      deliveryId: 'evt_1NG8Du2eZvKYlo2CUI79vXWy',
      timestamp: NOW,
      secretIndex: 0,
    });
    // Test-mode v0 entries and spaces after commas are passed over.
    const padded = `t=1700000000, v1=${'00'.repeat(32)}, v0=${'11'.repeat(32)}, v1=c023c6029fb9535b887701a78a7b8c6ca8fc3f401c07b634426150b00d624560`;
    expect(verifyWebhook(scheme, ['whsec_5PHg1dBmNxCnJq9sKzLh7tUa3WxYe2Rf'], { 'stripe-signature': padded }, body, NOW).ok).toBe(true);
    expect(signWebhook(scheme, 'whsec_5PHg1dBmNxCnJq9sKzLh7tUa3WxYe2Rf', body, { timestamp: NOW })).toEqual({ 'stripe-signature': header });
  });

  it('stripe: no delivery id when the body is not JSON or has no string id', () => {
    const scheme = resolveWebhookScheme('stripe');
    for (const text of ['not json', '{"object":"event"}', '{"id":42}', '["evt_1"]']) {
      const body = Buffer.from(text);
      const result = verifyWebhook(scheme, ['whsec_x'], signWebhook(scheme, 'whsec_x', body, { timestamp: NOW }), body, NOW);
      expect(result).toEqual({ ok: true, scheme: 'stripe', timestamp: NOW, secretIndex: 0 });
    }
  });

  it('hmac: RFC 4231 and RFC 2202 test case 2 (key "Jefe") in each algorithm and encoding', () => {
    const body = Buffer.from('what do ya want for nothing?');
    const vectors: Array<[Record<string, unknown>, string]> = [
      [{ type: 'hmac', header: 'X-Sig' }, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
      [{ type: 'hmac', header: 'X-Sig', algorithm: 'sha512', encoding: 'hex', prefix: 'sha512=' }, 'sha512=164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
      [{ type: 'hmac', header: 'X-Sig', algorithm: 'sha512', encoding: 'base64' }, 'Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw=='],
      [{ type: 'hmac', header: 'X-Sig', algorithm: 'sha1' }, 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79'],
    ];
    for (const [spec, signature] of vectors) {
      const scheme = resolveWebhookScheme(spec);
      expect(verifyWebhook(scheme, ['Jefe'], { 'x-sig': signature }, body, NOW)).toEqual({ ok: true, scheme: 'hmac', secretIndex: 0 });
      expect(signWebhook(scheme, 'Jefe', body)).toEqual({ 'x-sig': signature });
    }
  });

  it('hmac with a timestamp header signs `${timestamp}.${body}`', () => {
    // printf '%s' '1700000000.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
    const scheme = resolveWebhookScheme({ type: 'hmac', header: 'X-Sig', timestamp_header: 'X-Sig-Time' });
    const headers = { 'x-sig': '1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e', 'x-sig-time': '1700000000' };
    expect(verifyWebhook(scheme, ['Jefe'], headers, Buffer.from('what do ya want for nothing?'), NOW)).toEqual({ ok: true, scheme: 'hmac', timestamp: NOW, secretIndex: 0 });
  });
});

describe('parseWebhookScheme', () => {
  it('resolves the named schemes with the default tolerance, frozen', () => {
    expect(parseWebhookScheme('standard')).toEqual({ ok: true, scheme: { type: 'standard', toleranceSeconds: 300 } });
    expect(parseWebhookScheme('github')).toEqual({ ok: true, scheme: { type: 'github' } });
    expect(parseWebhookScheme({ type: 'stripe', tolerance_seconds: 600 })).toEqual({ ok: true, scheme: { type: 'stripe', toleranceSeconds: 600 } });
    expect(Object.isFrozen(resolveWebhookScheme('stripe'))).toBe(true);
  });

  it('resolves hmac with its defaults and header names in lower case', () => {
    expect(resolveWebhookScheme({ type: 'hmac', header: 'X-Signature' })).toEqual({
      type: 'hmac',
      header: 'x-signature',
      algorithm: 'sha256',
      encoding: 'hex',
      prefix: '',
      timestampHeader: undefined,
      idHeader: undefined,
      toleranceSeconds: 300,
    });
  });

  const bad: Array<[unknown, Array<[string, string]>]> = [
    ['stripee', [['scheme', "must be one of standard, github, stripe, hmac; did you mean 'stripe'? (got 'stripee')"]]],
    ['hmac', [['scheme', 'hmac needs options: write it as { type: hmac, header: <signature header>, … }']]],
    [42, [['scheme', 'must be a scheme name (standard, github, stripe, hmac) or an object with a type (got 42)']]],
    [{}, [['scheme.type', 'is required: one of standard, github, stripe, hmac']]],
    [{ type: 'svix' }, [['scheme.type', "must be one of standard, github, stripe, hmac (got 'svix')"]]],
    [{ type: 'github', tolerance_seconds: 60 }, [['scheme.tolerance_seconds', 'is not an option of the github scheme; its options are type']]],
    [{ type: 'standard', tolerance_seconds: 0 }, [['scheme.tolerance_seconds', 'must be a whole number of seconds from 1 to 86400 (got 0); the default is 300']]],
    [{ type: 'stripe', tolerance_seconds: '300' }, [['scheme.tolerance_seconds', "must be a whole number of seconds from 1 to 86400 (got '300'); the default is 300"]]],
    [{ type: 'hmac' }, [['scheme.header', 'is required: the name of the header that carries the signature, e.g. X-Signature']]],
    [
      { type: 'hmac', header: 'X Sig', algorithm: 'md5', encoding: 'base32', algo: 'sha1' },
      [
        ['scheme.algo', "is not an option of the hmac scheme; did you mean 'algorithm'?"],
        ['scheme.header', "must be an HTTP header name such as X-Signature (got 'X Sig')"],
        ['scheme.algorithm', "must be one of sha256, sha512, sha1 (got 'md5')"],
        ['scheme.encoding', "must be one of hex, base64; did you mean 'base64'? (got 'base32')"],
      ],
    ],
    [{ type: 'hmac', header: 'X-Sig', algorithm: 'sha265' }, [['scheme.algorithm', "must be one of sha256, sha512, sha1; did you mean 'sha256'? (got 'sha265')"]]],
    [{ type: 'hmac', header: 'X-Sig', prefix: 'v1, ' }, [['scheme.prefix', 'must not contain spaces or commas (they separate several signatures in one header)']]],
    [{ type: 'hmac', header: 'X-Sig', tolerance_seconds: 60 }, [['scheme.tolerance_seconds', 'has no effect without timestamp_header; set timestamp_header or remove it']]],
    [{ type: 'hmac', header: 'X-Sig', timestamp_header: 'x-sig' }, [['scheme', 'header, timestamp_header and id_header must be different headers']]],
  ];
  it.each(bad)('refuses %j, naming every problem', (spec, problems) => {
    expect(parseWebhookScheme(spec)).toEqual({ ok: false, problems: problems.map(([field, problem]) => ({ field, problem })) });
  });

  it('resolveWebhookScheme throws one UserError with a line per problem, under the given field and file', () => {
    let error: unknown;
    try {
      resolveWebhookScheme({ type: 'hmac', header: 'X-Sig', algorithm: 'md5', encoding: 'utf8' }, { field: 'trigger.scheme', where: 'workflows/orders/workflow.yaml' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'WEBHOOK_SCHEME_INVALID', context: { file: 'workflows/orders/workflow.yaml', field: 'trigger.scheme.algorithm' } });
    expect((error as Error).message).toBe(
      [
        "workflows/orders/workflow.yaml: trigger.scheme.algorithm: must be one of sha256, sha512, sha1 (got 'md5')",
        "workflows/orders/workflow.yaml: trigger.scheme.encoding: must be one of hex, base64 (got 'utf8')",
      ].join('\n'),
    );
  });
});

describe('checkWebhookSecrets', () => {
  const standard = resolveWebhookScheme('standard');
  it('accepts whsec_ keys and plain secrets', () => {
    expect(checkWebhookSecrets(standard, ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'plain'])).toEqual([]);
    expect(checkWebhookSecrets(resolveWebhookScheme('stripe'), ['whsec_not*base64'])).toEqual([]);
  });
  it('refuses no secret, an empty one, and a whsec_ secret that is not base64, by position and never by value', () => {
    expect(checkWebhookSecrets(standard, [])).toEqual([{ field: 'secret', problem: 'at least one secret is required' }]);
    const problems = checkWebhookSecrets(standard, ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_not*base64', '']);
    expect(problems).toEqual([
      { field: 'secret[1]', problem: 'starts with whsec_ but the rest is not base64; copy the whole secret the sender shows' },
      { field: 'secret[2]', problem: 'is empty' },
    ]);
    expect(() => verifyWebhook(standard, ['whsec_not*base64'], {}, BODY, NOW)).toThrow(/^webhook secret starts with whsec_ but the rest is not base64/);
  });
});
