/**
 * `shoal pubsub ...`: GossipSub through the running daemon: subscribe and print messages
 * as they come (until Ctrl-C or SIGTERM), publish, list our topics and a topic's peers.
 */
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { type Command, Option } from 'commander'
import { ShoalError } from '../core/errors.ts'
import { GOSSIP_LIMITS } from '../core/gossip/messages.ts'
import type { ShoalApi } from '../node/api.ts'
import { pubsubMessageToJson } from '../api/wire.ts'

export interface PubSubCommandContext {
  stdout: Writable
  stdin: NodeJS.ReadableStream
  /** Aborted on Ctrl-C or SIGTERM: `sub` ends there, successfully. */
  signal: AbortSignal
  print(line: string): void
  printJson(value: unknown): void
  withApi<T>(command: Command, body: (api: ShoalApi) => Promise<T>): Promise<T>
}

/** Read from stdin for `pub -`: the most any daemon takes (its pubsub.messageBytesMax may be lower, and it says so). */
const STDIN_BYTES_MAX = GOSSIP_LIMITS.messageDataBytesMax

export function registerPubSubCommand(program: Command, context: PubSubCommandContext): void {
  const { stdout, stdin, signal, print, printJson, withApi } = context
  const json = new Option('--json', 'print JSON')
  const pubsub = program.command('pubsub').description('GossipSub publish/subscribe: topics, messages and the peers that share them')

  pubsub
    .command('sub')
    .description('subscribe to a topic and print its messages as they come, until Ctrl-C')
    .argument('<topic>')
    .option('--json', 'one JSON object per message and line: topic, data (base64), from, messageId, receivedFrom')
    .action(async (topic: string, options: { json?: boolean }, command: Command) => {
      await withApi(command, async (api) => {
        const subscription = await api.pubsubSubscribe(topic, { signal })
        let droppedReported = 0
        try {
          for await (const message of subscription) {
            if (subscription.droppedCount !== droppedReported) {
              droppedReported = subscription.droppedCount
              process.stderr.write(`shoal: ${droppedReported} messages dropped so far: they came faster than they were read\n`)
            }
            const line = options.json ? JSON.stringify(pubsubMessageToJson(message)) : displayData(message.data)
            if (!stdout.write(`${line}\n`)) await once(stdout, 'drain', { signal })
          }
        } catch (error) {
          // Ctrl-C while stdout was full.
          if (!signal.aborted) throw error
        } finally {
          subscription.close()
        }
      })
    })

  pubsub
    .command('pub')
    .description('publish a message on a topic')
    .argument('<topic>')
    .argument('<data>', 'the message as text, or - to read it from stdin')
    .addOption(json)
    .action(async (topic: string, data: string, options: { json?: boolean }, command: Command) => {
      const bytes = data === '-' ? await readStdin(stdin, STDIN_BYTES_MAX) : new TextEncoder().encode(data)
      const published = await withApi(command, (api) => api.pubsubPublish(topic, bytes))
      if (options.json) return printJson(published)
      print(`published ${published.messageId} to ${published.recipients} peers`)
    })

  pubsub
    .command('ls')
    .description('the topics this node subscribes to')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const topics = await withApi(command, (api) => api.pubsubTopics())
      if (options.json) return printJson(topics)
      for (const topic of topics) print(topic)
    })

  pubsub
    .command('peers')
    .description('connected peers subscribed to a topic')
    .argument('<topic>')
    .addOption(json)
    .action(async (topic: string, options: { json?: boolean }, command: Command) => {
      const peers = await withApi(command, (api) => api.pubsubPeers(topic))
      if (options.json) return printJson(peers)
      for (const peer of peers) print(peer)
    })
}

async function readStdin(stdin: NodeJS.ReadableStream, bytesMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    total += bytes.byteLength
    if (total > bytesMax) throw new ShoalError('INVALID_ARGUMENT', `stdin holds more than ${bytesMax} bytes, the most a message may carry`)
    chunks.push(bytes)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: none may reach a terminal raw.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
const CONTROL_NOT_ESCAPED_BY_JSON = /[\u007f-\u009f\u2028\u2029]/g

/**
 * A message's data on one line, readable: UTF-8 text as it is (less one final newline, which
 * `echo` adds); text with control characters as a JSON string; anything else as
 * `<N bytes, base64 ...>`.
 */
export function displayData(data: Uint8Array): string {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data)
  } catch {
    return `<${data.byteLength} bytes, base64 ${Buffer.from(data).toString('base64')}>`
  }
  const line = text.replace(/\r?\n$/, '')
  if (!CONTROL.test(line)) return line
  return JSON.stringify(line).replace(CONTROL_NOT_ESCAPED_BY_JSON, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
