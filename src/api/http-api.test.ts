import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request, type IncomingMessage } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { blockKey, parseCid } from '../core/content/cid.ts'
import { isShoalError } from '../core/errors.ts'
import type { AddCandidate, PubSubMessage, ShoalApi } from '../node/api.ts'
import { SubscriptionQueue } from '../node/pubsub-subscription.ts'
import { initRepo } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'
import { eventually } from '../testing/cli.ts'
import { onCleanup, pseudoRandomBytes, tempDir } from '../testing/temp.ts'
import { HttpClient } from './http-client.ts'
import { type ApiServerOptions, startApiServer } from './http-server.ts'

const MiB = 1024 * 1024

async function startDaemon(t: test.TestContext): Promise<{ node: ShoalNode; client: HttpClient; url: string }> {
  const path = join(await tempDir(t), 'repo')
  await initRepo(path)
  const node = await ShoalNode.open(path)
  onCleanup(t, () => node.close())
  const server = await startApiServer(node, { host: '127.0.0.1', port: 0 })
  onCleanup(t, () => server.close())
  return { node, client: new HttpClient(server.url), url: server.url }
}

/** A node on the network (loopback, no mDNS, no peers) behind the API. */
async function startOnlineDaemon(t: test.TestContext, options: Partial<ApiServerOptions> = {}) {
  const path = join(await tempDir(t), 'repo')
  await initRepo(path)
  const node = await ShoalNode.open(path)
  onCleanup(t, () => node.close())
  await node.startNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  const server = await startApiServer(node, { host: '127.0.0.1', port: 0, ...options })
  onCleanup(t, () => server.close())
  return { node, server, client: new HttpClient(server.url), url: server.url }
}

async function* listOf(...candidates: AddCandidate[]): AsyncIterable<AddCandidate> {
  yield* candidates
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

test('every ShoalApi call works over HTTP and gives what the node gives', async (t) => {
  const { node, client } = await startDaemon(t)
  assert.deepEqual(await client.id(), await node.id())
  const big = pseudoRandomBytes(2 * MiB + 3, 1)
  const roots = await client.add(listOf(
    { kind: 'directory', path: 'site' },
    { kind: 'file', path: 'site/index.html', content: once(new TextEncoder().encode('<h1>hi</h1>')) },
    { kind: 'file', path: 'site/a b%c.bin', content: once(big) },
    { kind: 'symlink', path: 'site/home', target: 'index.html' },
    { kind: 'directory', path: 'site/empty' },
  ))
  assert.equal(roots.length, 1)
  const root = roots[0]!.cid
  assert.deepEqual(await client.ls(root), await node.ls(root))
  assert.deepEqual((await client.ls(root)).map((entry) => entry.name), ['a b%c.bin', 'empty', 'home', 'index.html'])
  assert.deepEqual(Buffer.concat(await Array.fromAsync(client.cat(`${root}/a b%c.bin`))), Buffer.from(big))
  assert.equal(Buffer.concat(await Array.fromAsync(client.cat(`${root}/a b%c.bin`, { offset: 2 * MiB, length: 10 }))).byteLength, 3)
  assert.deepEqual(await client.stat(`${root}/home`), await node.stat(`${root}/home`))
  assert.deepEqual(await client.pinLs(), [{ cid: root, type: 'recursive' }])
  assert.deepEqual(await client.repoStat(), await node.repoStat())
  assert.deepEqual(await client.pinRm(root), { cid: root, type: 'recursive' })
  assert.deepEqual(await client.pinAdd(root, { recursive: false }), { cid: root, type: 'direct' })
  assert.equal((await client.gc()).removedBlockCount, 7, "8 blocks: 2 folders, 2 files (one of 3 leaves and a root), a symlink; the direct pin keeps the root")
  assert.deepEqual(await client.repoVerify(), { blockCount: 1, corrupt: [] })
})

test('a raw body is one file; the profile and pin options pass through', async (t) => {
  const { url, node } = await startDaemon(t)
  const response = await fetch(`${url}/api/v0/add?name=hello.txt&cid-profile=unixfs-v0-2015&pin=false`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: 'hello\n',
  })
  assert.equal(response.status, 200)
  const { roots } = (await response.json()) as { roots: Array<{ cid: string; path: string }> }
  assert.equal(roots[0]!.path, 'hello.txt')
  assert.match(roots[0]!.cid, /^Qm/)
  assert.deepEqual(await node.pinLs(), [])
})

test('errors are JSON with a code and a status that fits it', async (t) => {
  const { url, client } = await startDaemon(t)
  const expectError = async (path: string, init: RequestInit, status: number, code: string) => {
    const response = await fetch(`${url}${path}`, init)
    assert.equal(response.status, status, path)
    const body = (await response.json()) as { error: { code: string; message: string } }
    assert.equal(body.error.code, code, path)
    assert.ok(body.error.message.length > 0 && !body.error.message.includes('\n'))
  }
  await expectError('/api/v0/cat?arg=nonsense', {}, 400, 'INVALID_CID')
  await expectError('/api/v0/cat', {}, 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/cat?arg=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', {}, 404, 'NOT_FOUND')
  await expectError('/api/v0/cat?arg=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku&offset=-1', {}, 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/pin/rm?arg=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', { method: 'POST' }, 404, 'PIN_NOT_FOUND')
  await expectError('/api/v0/add?cid-profile=v9', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' }, 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add?pin=maybe', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' }, 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=zzz' }, body: '--zzz\r\nbroken' }, 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }, 400, 'INVALID_ARGUMENT')
  const part = (filename: string, type: string, body: string) =>
    `--zzz\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n${body}\r\n--zzz--\r\n`
  const multipart = (body: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=zzz' }, body })
  await expectError('/api/v0/add', multipart(part('l', 'application/symlink', 'x'.repeat(5000))), 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add', multipart(part('%E0%A4%A', 'application/octet-stream', 'x')), 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add', multipart(part('..%2Fescape', 'application/octet-stream', 'x')), 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/add', multipart(part('y'.repeat(5000), 'application/octet-stream', 'x')), 400, 'INVALID_ARGUMENT')
  await expectError('/api/v0/nowhere', {}, 404, 'INVALID_ARGUMENT')
  await assert.rejects(client.stat('nonsense'), (error) => isShoalError(error, 'INVALID_CID'), 'the client raises the same typed error')
  assert.match((await client.id()).peerId, /^12D3KooW/, 'the daemon still serves after bad requests')
})

test('a corrupt block met mid-stream ends cat with an error, never a silent short file', async (t) => {
  const { node, client, url } = await startDaemon(t)
  const bytes = pseudoRandomBytes(3 * MiB, 2)
  const [root] = await node.add(listOf({ kind: 'file', path: 'f', content: once(bytes) }))
  // Corrupt the last leaf so the first bytes go out before the damage is met.
  const lastLeaf = await lastLeafOf(node, root!.cid)
  const key = blockKey(lastLeaf)
  await writeFile(join(node.repo.blocks.root, key.slice(-3, -1), `${key}.data`), pseudoRandomBytes(MiB, 3))
  let received = 0
  await assert.rejects(async () => {
    for await (const chunk of client.cat(root!.cid)) received += chunk.byteLength
  }, (error) => isShoalError(error, 'BLOCK_CORRUPT') && error.message.includes(lastLeaf.toString()))
  assert.ok(received > 0 && received < bytes.byteLength, `some bytes arrived first (${received})`)
  const trailer = await new Promise<string | undefined>((resolve, reject) => {
    request(`${url}/api/v0/cat?arg=${root!.cid}`, (response) => {
      response.resume()
      response.on('end', () => resolve(response.trailers['x-stream-error']))
    }).on('error', reject).end()
  })
  assert.ok(trailer?.includes('NOT_FOUND'), `the quarantined block is now missing, and the trailer says so: ${trailer}`)
})

async function lastLeafOf(node: ShoalNode, rootText: string) {
  const root = parseCid(rootText)
  const dagPb = await import('@ipld/dag-pb')
  return dagPb.decode(await node.repo.blocks.get(root)).Links.at(-1)!.Hash
}

test('a client that goes away mid-add leaves the repository as it was', async (t) => {
  const { node, client } = await startDaemon(t)
  const before = await node.repoStat()
  const controller = new AbortController()
  async function* endless(): AsyncIterable<Uint8Array> {
    for (let i = 0; i < 64; i++) {
      yield pseudoRandomBytes(256 * 1024, i + 1)
      if (i === 8) controller.abort()
      await sleep(5)
    }
  }
  await assert.rejects(client.add(listOf({ kind: 'file', path: 'big', content: endless() }), { signal: controller.signal }), (error) => isShoalError(error, 'ABORTED'))
  for (let attempt = 0; attempt < 100 && (await node.repoStat()).blockCount !== before.blockCount; attempt++) await sleep(20)
  assert.deepEqual(await node.repoStat(), before)
})

test('requests a web page could make through the browser are refused', async (t) => {
  const { url, client } = await startDaemon(t)
  const port = new URL(url).port
  const status = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
    request(`${url}/api/v0/repo/gc`, { method: 'POST', headers }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    }).on('error', reject).end()
  })
  assert.equal(await status({ origin: 'https://evil.example' }), 403, 'cross-site request forgery')
  assert.equal(await status({ host: `evil.example:${port}`, origin: `http://evil.example:${port}` }), 403, 'DNS rebinding')
  assert.equal(await status({ host: `localhost:${port}` }), 200)
  assert.equal(await status({ origin: url }), 200, 'the same origin is fine')
  assert.match((await client.id()).peerId, /^12D3KooW/)
})

const text = (value: string) => new TextEncoder().encode(value)

test('pub/sub over HTTP: messages as server-sent events; the node unsubscribes when the last client leaves', async (t) => {
  const { node, client } = await startOnlineDaemon(t)
  const self = (await node.id()).peerId
  const first = await client.pubsubSubscribe('news')
  const second = await client.pubsubSubscribe('news')
  const firstMessages = first[Symbol.asyncIterator]()
  const secondMessages = second[Symbol.asyncIterator]()
  assert.deepEqual(await client.pubsubTopics(), ['news'])
  assert.deepEqual(await client.pubsubPeers('news'), [])

  const published = await client.pubsubPublish('news', text('hello'))
  assert.equal(published.recipients, 0, 'no peer subscribes')
  assert.match(published.messageId, /^[0-9a-f]{40,}$/)
  const expected: PubSubMessage = { topic: 'news', data: text('hello'), from: self, messageId: published.messageId, receivedFrom: self }
  assert.deepEqual((await firstMessages.next()).value, expected)
  assert.deepEqual((await secondMessages.next()).value, expected)

  // One client leaves; the other still gets messages, an empty one and a large binary one among them.
  first.close()
  const large = pseudoRandomBytes(700 * 1024, 5)
  await client.pubsubPublish('news', new Uint8Array())
  await client.pubsubPublish('news', large)
  assert.deepEqual((await secondMessages.next()).value?.data, new Uint8Array())
  assert.deepEqual((await secondMessages.next()).value?.data, large)
  assert.deepEqual(await client.pubsubTopics(), ['news'])
  assert.equal(second.droppedCount, 0)

  // The last leaves as a loop that breaks does, with return(): the daemon unsubscribes.
  await secondMessages.return!()
  await eventually('the node to unsubscribe', async () => ((await client.pubsubTopics()).length === 0 ? true : undefined), 5_000)
})

test('an event stream has the event-stream type, keepalive comments, and ends with an error event when the server closes', async (t) => {
  const { client, server, url } = await startOnlineDaemon(t, { eventStreamKeepaliveMs: 50 })
  const { response, received } = await new Promise<{ response: import('node:http').IncomingMessage; received: { text: string } }>((resolve, reject) => {
    request(`${url}/api/v0/pubsub/sub?arg=${encodeURIComponent('a topic/ü')}`, (response) => {
      const received = { text: '' }
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { received.text += chunk })
      resolve({ response, received })
    }).on('error', reject).end()
  })
  assert.equal(response.statusCode, 200)
  assert.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  assert.equal(response.headers['cache-control'], 'no-cache')
  await eventually('a keepalive comment', async () => (received.text.includes(': keepalive\n\n') ? true : undefined), 5_000)
  assert.deepEqual(await client.pubsubTopics(), ['a topic/ü'])
  const { messageId } = await client.pubsubPublish('a topic/ü', text('line one\nline two'))
  const event = await eventually('the message event', async () => /^data: (\{.*\})\n\n/m.exec(received.text)?.[1])
  assert.deepEqual(JSON.parse(event), {
    topic: 'a topic/ü', data: Buffer.from('line one\nline two').toString('base64'), from: (await client.id()).peerId, messageId, receivedFrom: (await client.id()).peerId,
  })

  const subscription = await client.pubsubSubscribe('a topic/ü')
  const ended = Array.fromAsync(subscription).then(() => undefined, (error: unknown) => error)
  const responseEnded = new Promise((resolve) => response.on('end', resolve))
  await server.close()
  await responseEnded
  assert.match(received.text, /event: error\ndata: \{"code":"OFFLINE","message":"the daemon is stopping"\}\n\n$/)
  const error = await ended
  assert.ok(isShoalError(error, 'OFFLINE') && error.message === 'the daemon is stopping', 'the client raises it')
})

test('a slow reader is told how many messages the daemon dropped', async (t) => {
  // A daemon whose subscriptions keep 2 messages: pushed 5 at once, the reader loses 2 (one is handed over at once).
  const queue = new SubscriptionQueue('t', { messagesMax: 2, bytesMax: 1024 }, { messagesQueued: 0, messagesDropped: 0 }, () => {})
  const api = { pubsubSubscribe: async () => queue } as unknown as ShoalApi
  const server = await startApiServer(api, { host: '127.0.0.1', port: 0 })
  onCleanup(t, () => server.close())
  const subscription = await new HttpClient(server.url).pubsubSubscribe('t')
  for (let index = 0; index < 5; index++) queue.push({ topic: 't', data: Uint8Array.of(index), from: undefined, messageId: String(index), receivedFrom: 'p' })
  queue.close()
  const messages = await Array.fromAsync(subscription).catch((error: unknown) => error)
  assert.ok(isShoalError(messages, 'DAEMON_UNREACHABLE'), 'a stream that ends without an error event is cut, not complete')
  assert.equal(subscription.droppedCount, 2)
})

test('pub/sub input errors are JSON with a 4xx status; offline is 503', async (t) => {
  const { url, client } = await startOnlineDaemon(t, { pubsubMessageBytesMax: 10 })
  const expectError = async (path: string, init: RequestInit, status: number, code: string, message: RegExp) => {
    const response = await fetch(`${url}${path}`, init)
    assert.equal(response.status, status, path)
    const body = (await response.json()) as { error: { code: string; message: string } }
    assert.equal(body.error.code, code, path)
    assert.match(body.error.message, message, path)
  }
  const post = (body: string | Uint8Array, type = 'application/octet-stream'): RequestInit => ({ method: 'POST', headers: { 'content-type': type }, body })
  const long = 't'.repeat(257)
  await expectError('/api/v0/pubsub/pub', post('x'), 400, 'INVALID_ARGUMENT', /'arg' \(the topic\) is missing/)
  await expectError('/api/v0/pubsub/pub?arg=', post('x'), 400, 'INVALID_ARGUMENT', /^a topic is 1 to 256 bytes of UTF-8 \(got 0\)$/)
  await expectError(`/api/v0/pubsub/pub?arg=${long}`, post('x'), 400, 'INVALID_ARGUMENT', /got 257/)
  await expectError('/api/v0/pubsub/pub?arg=t', post('x'.repeat(11)), 400, 'INVALID_ARGUMENT', /^the body is larger than 10 bytes \(pubsub.messageBytesMax\)$/)
  await expectError('/api/v0/pubsub/pub?arg=t', post('x', 'text/plain'), 400, 'INVALID_ARGUMENT', /application\/octet-stream/)
  await expectError('/api/v0/pubsub/sub', {}, 400, 'INVALID_ARGUMENT', /is missing/)
  await expectError('/api/v0/pubsub/sub?arg=', {}, 400, 'INVALID_ARGUMENT', /got 0/)
  await expectError(`/api/v0/pubsub/sub?arg=${long}`, {}, 400, 'INVALID_ARGUMENT', /got 257/)
  await expectError('/api/v0/pubsub/peers', {}, 400, 'INVALID_ARGUMENT', /is missing/)
  await expectError(`/api/v0/pubsub/peers?arg=${long}`, {}, 400, 'INVALID_ARGUMENT', /got 257/)
  await assert.rejects(client.pubsubSubscribe(''), (error) => isShoalError(error, 'INVALID_ARGUMENT'), 'the client raises the same typed error')
  assert.deepEqual(await client.pubsubTopics(), [], 'nothing was left subscribed')
  assert.deepEqual(await client.pubsubPublish('t', text('0123456789')).then((published) => published.recipients), 0, 'exactly the bound is fine')

  const offline = await startDaemon(t)
  await assert.rejects(offline.client.pubsubTopics(), (error) => isShoalError(error, 'OFFLINE'))
  const response = await fetch(`${offline.url}/api/v0/pubsub/ls`)
  assert.equal(response.status, 503)
})

test('requests past api.requestsInFlightMax are answered 503 BUSY at once and counted; the slot frees when one ends', async (t) => {
  const refusals: string[] = []
  const { client } = await startOnlineDaemon(t, { requestsInFlightMax: 2, onRefused: (reason) => refusals.push(reason) })
  const held = [await client.pubsubSubscribe('busy'), await client.pubsubSubscribe('busy')]
  await assert.rejects(client.id(), (error) => isShoalError(error, 'BUSY'))
  assert.deepEqual(refusals, ['busy'])
  held[0]!.close()
  const identity = await eventually('a slot to free', () => notBusy(client.id()))
  assert.match(identity.peerId, /^12D3Koo/)
  held[1]!.close()
})


test('reads of content past api.readsInFlightMax are answered 503 BUSY and counted, while other requests go on', async (t) => {
  const refusals: string[] = []
  const { node, client, url } = await startOnlineDaemon(t, { readsInFlightMax: 1, onRefused: (reason) => refusals.push(reason) })
  const [root] = await node.add(listOf({ kind: 'file', path: '', content: once(new Uint8Array(16 * 1024 * 1024).fill(7)) }))
  // A reader that takes the status line and then reads nothing holds its read open.
  const stalled = await new Promise<IncomingMessage>((resolve) => request(`${url}/api/v0/cat?arg=${root!.cid}`, resolve).end())
  stalled.pause()
  await assert.rejects(Array.fromAsync(client.cat(root!.cid)), (error) => isShoalError(error, 'BUSY'))
  assert.deepEqual(refusals, ['reads-busy'])
  assert.match((await client.id()).peerId, /^12D3Koo/)
  stalled.destroy()
  assert.equal((await eventually('a read slot to free', () => notBusy(Array.fromAsync(client.cat(root!.cid, { length: 10 }))))).reduce((sum, chunk) => sum + chunk.byteLength, 0), 10)
})

/** The answer, or undefined while the server is busy: it sees a closed stream a moment after the client closes it. */
async function notBusy<T>(answer: Promise<T>): Promise<T | undefined> {
  return answer.catch((error: unknown) => {
    if (isShoalError(error, 'BUSY')) return undefined
    throw error
  })
}
