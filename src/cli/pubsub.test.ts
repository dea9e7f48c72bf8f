/**
 * Three real daemons on loopback, bootstrapped in a star: `shoal pubsub sub` on two of them
 * prints what `shoal pubsub pub` on the third publishes (as JSON, and as text); ls and peers
 * show the topic and who shares it; a subscription through the HTTP client gets the same
 * messages as server-sent events; every daemon unsubscribes once its last subscriber is gone
 * (a process stopped by SIGTERM, one killed, a client that closes); bad input fails with one
 * line.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { HttpClient } from '../api/http-client.ts'
import type { PubSubMessageJson } from '../api/wire.ts'
import { collect, eventually, runShoal, startDaemon, startShoal, waitForLine, type Daemon } from '../testing/cli.ts'
import { onCleanup, tempDir } from '../testing/temp.ts'
import { displayData } from './pubsub-command.ts'

const TOPIC = 'news/ü'

test('daemons publish and subscribe through the CLI and the HTTP API, and unsubscribe when the last subscriber goes', { timeout: 90_000 }, async (t) => {
  const dir = await tempDir(t)
  const first = await startDaemon(t, join(dir, 'n0'), { config: { 'pubsub.messageBytesMax': '4096' } })
  const [second, third] = await Promise.all([1, 2].map((index) => startDaemon(t, join(dir, `n${index}`), { bootstrap: [first.address] })))
  const shoal = (daemon: Daemon, ...args: string[]) => runShoal(['--repo', daemon.repo, ...args])
  const jsonOf = async <T>(daemon: Daemon, ...args: string[]): Promise<T> => {
    const result = await shoal(daemon, ...args, '--json')
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout) as T
  }
  const topicsOf = (daemon: Daemon) => jsonOf<string[]>(daemon, 'pubsub', 'ls')
  const peersOf = (daemon: Daemon, topic: string) => jsonOf<string[]>(daemon, 'pubsub', 'peers', topic)

  // Subscribers on the first daemon (text) and the third (JSON); the second publishes.
  const textSubscriber = startShoal(['--repo', first.repo, 'pubsub', 'sub', TOPIC])
  onCleanup(t, () => textSubscriber.kill('SIGKILL'))
  const jsonSubscriber = startShoal(['--repo', third!.repo, 'pubsub', 'sub', TOPIC, '--json'])
  onCleanup(t, () => jsonSubscriber.kill('SIGKILL'))
  for (const daemon of [first, third!]) await eventually(`${daemon.peerId} to subscribe`, async () => ((await topicsOf(daemon)).includes(TOPIC) ? true : undefined))
  await eventually('the publisher to see both subscribers', async () => {
    const peers = await peersOf(second!, TOPIC)
    return peers.includes(first.peerId) && peers.includes(third!.peerId) ? peers : undefined
  })
  assert.deepEqual(await topicsOf(second!), [])
  assert.equal((await shoal(first, 'pubsub', 'ls')).stdout, `${TOPIC}\n`)
  assert.equal((await shoal(first, 'pubsub', 'peers', TOPIC)).stdout, `${third!.peerId}\n`, 'subscribers of the topic only')

  const published = await shoal(second!, 'pubsub', 'pub', TOPIC, 'hello from n1')
  assert.equal(published.code, 0, published.stderr)
  const [, messageId, recipients] = /^published ([0-9a-f]+) to (\d+) peers\n$/.exec(published.stdout) ?? []
  assert.equal(recipients, '2')
  const [line] = await waitForLine(jsonSubscriber, /^\{.*\}$/m)
  const received = JSON.parse(line) as PubSubMessageJson
  // Straight from the publisher, almost always; through the other subscriber if that was quicker.
  assert.ok([second!.peerId, first.peerId].includes(received.receivedFrom), received.receivedFrom)
  assert.deepEqual(received, {
    topic: TOPIC, data: Buffer.from('hello from n1').toString('base64'), from: second!.peerId, messageId, receivedFrom: received.receivedFrom,
  })
  await waitForLine(textSubscriber, /^hello from n1$/m)

  // From stdin: bytes that are not text, as JSON and in readable form.
  const binary = Uint8Array.of(0, 1, 2, 0xff)
  const fromStdin = await runShoal(['--repo', second!.repo, 'pubsub', 'pub', TOPIC, '-', '--json'], { input: binary })
  assert.equal(fromStdin.code, 0, fromStdin.stderr)
  assert.equal((JSON.parse(fromStdin.stdout) as { recipients: number }).recipients, 2)
  await waitForLine(jsonSubscriber, /"data":"AAEC\/w=="/)
  await waitForLine(textSubscriber, /^<4 bytes, base64 AAEC\/w==>$/m)

  // A subscription through the HTTP client, on the publisher: server-sent events.
  const client = new HttpClient((await readFile(join(second!.repo, 'api'), 'utf8')).trim())
  const subscription = await client.pubsubSubscribe(TOPIC)
  const messages = subscription[Symbol.asyncIterator]()
  await eventually('the third daemon to see the second subscribed', async () => ((await peersOf(third!, TOPIC)).includes(second!.peerId) ? true : undefined))
  const fromThird = await jsonOf<{ messageId: string; recipients: number }>(third!, 'pubsub', 'pub', TOPIC, 'to everyone')
  assert.equal(fromThird.recipients, 2)
  const { value } = await messages.next()
  assert.equal(new TextDecoder().decode(value!.data), 'to everyone')
  assert.deepEqual({ ...value!, data: undefined }, { topic: TOPIC, data: undefined, from: third!.peerId, messageId: fromThird.messageId, receivedFrom: value!.receivedFrom })
  assert.ok([third!.peerId, first.peerId].includes(value!.receivedFrom), value!.receivedFrom)
  await waitForLine(textSubscriber, /^to everyone$/m)
  subscription.close()
  await eventually('the second daemon to unsubscribe', async () => ((await topicsOf(second!)).length === 0 ? true : undefined))

  // SIGTERM ends `sub` with exit 0; SIGKILL just drops its connection. Both daemons unsubscribe.
  jsonSubscriber.kill('SIGTERM')
  const stopped = await collect(jsonSubscriber)
  assert.equal(stopped.code, 0, stopped.stderr)
  assert.equal(stopped.stderr, '')
  textSubscriber.kill('SIGKILL')
  for (const daemon of [first, third!]) await eventually(`${daemon.peerId} to unsubscribe`, async () => ((await topicsOf(daemon)).length === 0 ? true : undefined))
  await eventually('the others to see that no one subscribes', async () => ((await peersOf(second!, TOPIC)).length === 0 ? true : undefined))

  // Bad input: one line each, non-zero exit.
  for (const [daemon, args, input, message] of [
    [second!, ['pubsub', 'pub', '', 'x'], undefined, /^shoal: a topic is 1 to 256 bytes of UTF-8 \(got 0\)\n$/],
    [second!, ['pubsub', 'sub', 't'.repeat(257)], undefined, /^shoal: a topic is 1 to 256 bytes of UTF-8 \(got 257\)\n$/],
    [second!, ['pubsub', 'peers', 't'.repeat(257)], undefined, /^shoal: a topic is 1 to 256 bytes of UTF-8 \(got 257\)\n$/],
    [first, ['pubsub', 'pub', TOPIC, '-'], 'x'.repeat(4097), /^shoal: the body is larger than 4096 bytes \(pubsub.messageBytesMax\)\n$/],
    [second!, ['pubsub', 'pub', TOPIC, '-'], new Uint8Array(1024 * 1024 + 1), /^shoal: stdin holds more than 1048576 bytes, the most a message may carry\n$/],
    [second!, ['pubsub', 'peers'], undefined, /^shoal: missing required argument 'topic'\n$/],
  ] as const) {
    const result = await runShoal(['--repo', daemon.repo, ...args], { input })
    assert.equal(result.code, 1, args.join(' '))
    assert.match(result.stderr, message)
  }
})

test('pubsub commands need the daemon', async (t) => {
  const repo = join(await tempDir(t), 'repo')
  assert.equal((await runShoal(['--repo', repo, 'init'])).code, 0)
  for (const args of [['pubsub', 'ls'], ['pubsub', 'sub', 't'], ['pubsub', 'pub', 't', 'x'], ['pubsub', 'peers', 't']]) {
    const result = await runShoal(['--repo', repo, ...args])
    assert.equal(result.code, 1, args.join(' '))
    assert.equal(result.stderr, 'shoal: the node is offline: start it with `shoal daemon`\n')
  }
})

test('data is printed on one line: text as it is, text with control characters quoted, other bytes in base64', () => {
  const encode = (text: string) => new TextEncoder().encode(text)
  assert.equal(displayData(encode('hello, wörld\n')), 'hello, wörld', 'one final newline is dropped')
  assert.equal(displayData(encode('two\nlines')), '"two\\nlines"')
  assert.equal(displayData(encode('bell\u0007 csi\u009b sep\u2028')), '"bell\\u0007 csi\\u009b sep\\u2028"')
  assert.equal(displayData(Uint8Array.of(0xc3, 0x28)), '<2 bytes, base64 wyg=>')
  assert.equal(displayData(new Uint8Array()), '')
})
