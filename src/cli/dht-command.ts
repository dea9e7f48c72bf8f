/**
 * `shoal dht ...`: queries to the Kademlia DHT through the running daemon (find-peer,
 * find-providers, provide, get, put) and a view of its routing table.
 */
import { readFile } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { type Command, Option } from 'commander'
import { ShoalError } from '../core/errors.ts'
import type { DhtQueryResult, ShoalApi } from '../node/api.ts'

export interface DhtCommandContext {
  stdout: Writable
  print(line: string): void
  printJson(value: unknown): void
  withApi<T>(command: Command, body: (api: ShoalApi) => Promise<T>): Promise<T>
}

export function registerDhtCommand(program: Command, context: DhtCommandContext): void {
  const { stdout, print, printJson, withApi } = context
  const json = new Option('--json', 'print JSON')
  const dht = program.command('dht').description('the Kademlia DHT: find peers and providers, announce content, store records')

  dht
    .command('find-peer')
    .description("find a peer's addresses")
    .argument('<peer>', 'peer id')
    .addOption(json)
    .action(async (peer: string, options: { json?: boolean }, command: Command) => {
      const found = await withApi(command, (api) => api.dhtFindPeer(peer))
      if (options.json) return printJson(found)
      for (const address of found.addresses) print(address)
      if (found.addresses.length === 0) print(`${found.peerId} (no addresses known)`)
    })

  dht
    .command('find-providers')
    .description('find peers that provide a CID')
    .argument('<cid>')
    // The node checks the count, for the API and the CLI alike.
    .option('--max <count>', 'stop after this many providers (default 20)', Number)
    .addOption(json)
    .action(async (cid: string, options: { max?: number; json?: boolean }, command: Command) => {
      const result = await withApi(command, (api) => api.dhtFindProviders(cid, { max: options.max }))
      if (options.json) return printJson(result)
      for (const provider of result.providers) print(`${provider.peerId} ${provider.addresses.join(' ')}`.trimEnd())
      if (result.providers.length === 0) throw new ShoalError('NOT_FOUND', `no providers of ${cid} found (${summary(result)})`)
    })

  dht
    .command('provide')
    .description('announce that this node provides a CID (republished while it is pinned)')
    .argument('<cid>')
    .addOption(json)
    .action(async (cid: string, options: { json?: boolean }, command: Command) => {
      const result = await withApi(command, (api) => api.dhtProvide(cid))
      if (options.json) return printJson(result)
      if (result.storedCount === 0) throw new ShoalError('NOT_FOUND', `no DHT server took the provider record (${summary(result)})`)
      print(`provided ${cid} to ${result.storedCount} peers (${summary(result)})`)
    })

  dht
    .command('get')
    .description('fetch the best valid record for a key and write its value to stdout')
    .argument('<key>', '/ipns/<peer id> or /pk/<peer id>')
    .addOption(json)
    .action(async (key: string, options: { json?: boolean }, command: Command) => {
      const { value, ...result } = await withApi(command, (api) => api.dhtGet(key))
      if (options.json) return printJson({ value: Buffer.from(value).toString('base64'), ...result })
      stdout.write(value)
    })

  dht
    .command('put')
    .description('store a signed record (an IPNS record, a public key) under its key')
    .argument('<key>', '/ipns/<peer id> or /pk/<peer id>')
    .argument('<value-file>', 'the record, as bytes')
    .addOption(json)
    .action(async (key: string, file: string, options: { json?: boolean }, command: Command) => {
      let value: Uint8Array
      try {
        value = await readFile(file)
      } catch (error) {
        throw new ShoalError('NOT_FOUND', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
      }
      const result = await withApi(command, (api) => api.dhtPut(key, value))
      if (options.json) return printJson(result)
      if (result.storedCount === 0) throw new ShoalError('NOT_FOUND', `no DHT server took the record (${summary(result)})`)
      print(`stored on ${result.storedCount} peers (${summary(result)})`)
    })

  dht
    .command('table')
    .description('the routing table: buckets by common prefix length, and their contacts')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const table = await withApi(command, (api) => api.dhtTable())
      if (options.json) return printJson(table)
      print(`mode ${table.mode}, ${table.size} contacts`)
      for (const bucket of table.buckets) {
        print(`bucket ${bucket.index}: ${bucket.contacts.length} contacts, ${bucket.replacementCount} replacements`)
        for (const contact of bucket.contacts) print(`  ${contact.peerId} ${contact.addresses.join(' ')}`.trimEnd())
      }
    })
}

function summary(result: DhtQueryResult): string {
  return `${result.outcome}, ${result.stats.requests} requests, ${Math.round(result.stats.durationMs)} ms`
}
