/**
 * `npm run test:nat`: every pair of NAT modes {public, full cone, restricted cone,
 * port-restricted cone, symmetric} in testbed/nat-topology.sh, with real daemons. For each
 * pair, peer 1 connects to peer 2 (its public address, or its relayed one), waits for the
 * upgrade to a direct connection, and the row says: connected, how (direct or relayed, at
 * the start and at the end), time to first byte, time to the direct upgrade, the attempts it
 * took. Then peer 1 downloads `--transfer-mib` MiB (default 64; 0: none) that peer 2 added,
 * through the DHT and the swarm, and the row says how long it took and what went through
 * the relay. `--runs N` repeats each pair on a fresh topology; `--pairs a:b,c:d` picks pairs.
 */
import { parseArgs } from 'node:util'
import { NAT_MODES, NatTestbed, natTestbedUnavailable, type NatMode } from '../src/testing/nat-testbed.ts'
import { connectThroughNat, transferThroughNat, type NatConnectRow, type NatTransferRow } from '../src/testing/nat-connect.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '1' }, pairs: { type: 'string' }, 'transfer-mib': { type: 'string', default: '64' } } })
const runs = Number(values.runs)
const transferMib = Number(values['transfer-mib'])
const pairs: Array<[NatMode, NatMode]> = values.pairs === undefined
  ? NAT_MODES.flatMap((first, index) => NAT_MODES.slice(index).map((second): [NatMode, NatMode] => [first, second]))
  : values.pairs.split(',').map((pair) => pair.split(':') as [NatMode, NatMode])

const unavailable = await natTestbedUnavailable()
if (unavailable !== undefined) {
  console.error(`the NAT testbed cannot run here: ${unavailable}`)
  process.exit(1)
}

type Row = NatConnectRow & { pair: string; run: number; transfer: NatTransferRow | undefined }
const rows: Row[] = []
for (const [first, second] of pairs) {
  for (let run = 1; run <= runs; run++) {
    const testbed = await NatTestbed.up(first, second)
    try {
      const row = await connectThroughNat(testbed)
      const transfer = row.connected && transferMib > 0 ? await transferThroughNat(testbed, transferMib) : undefined
      rows.push({ pair: `${first}–${second}`, run, ...row, transfer })
      console.log(formatRow(rows.at(-1)!))
    } finally {
      await testbed.down()
    }
  }
}

console.log(`\npair | runs | connected | direct at the end | first attempt | median first byte ms | median upgrade ms | max upgrade ms | ${transferMib} MiB intact | median MiB/s | median MiB through the relay`)
for (const [first, second] of pairs) {
  const pair = `${first}–${second}`
  const of = rows.filter((row) => row.pair === pair)
  const upgrades = of.flatMap((row) => row.upgradeMs === null ? [] : [row.upgradeMs])
  const firstBytes = of.flatMap((row) => row.firstByteMs === null ? [] : [row.firstByteMs])
  console.log([
    pair, of.length,
    of.filter((row) => row.connected).length,
    of.filter((row) => row.directAtEnd).length,
    of.filter((row) => !row.relayedAtStart || row.upgradeAttempts === 1 && row.upgradeMs !== null).length,
    median(firstBytes), median(upgrades), upgrades.length === 0 ? '-' : Math.round(Math.max(...upgrades)),
    of.filter((row) => row.transfer?.intact === true).length,
    median(of.flatMap((row) => row.transfer?.intact === true ? [row.transfer.bytes / 2 ** 20 / row.transfer.seconds] : []), 1),
    median(of.flatMap((row) => row.transfer === undefined ? [] : [row.transfer.relayedBytes / 2 ** 20]), 1),
  ].join(' | '))
}

function formatRow(row: Row): string {
  const how = row.relayedAtStart ? (row.directAtEnd ? `relayed → direct after ${Math.round(row.upgradeMs!)} ms (attempt ${row.upgradeAttempts})` : 'relayed, stayed relayed') : 'direct'
  return `${row.pair} run ${row.run}: ${row.connected ? 'connected' : `FAILED (${row.error})`}, ${how}, first byte ${row.firstByteMs === null ? '-' : Math.round(row.firstByteMs)} ms, alive after ${row.aliveAfterMs} ms: ${row.alive}${row.error === undefined ? '' : ` (${row.error})`}${formatTransfer(row.transfer)}`
}

function formatTransfer(transfer: NatTransferRow | undefined): string {
  if (transfer === undefined) return ''
  if (transfer.error !== undefined) return `; transfer FAILED: ${transfer.error}`
  const mib = transfer.bytes / 2 ** 20
  return `; ${mib} MiB in ${transfer.seconds.toFixed(1)} s (${(mib / transfer.seconds).toFixed(1)} MiB/s), ${(transfer.relayedBytes / 2 ** 20).toFixed(1)} MiB through the relay, ${transfer.intact ? 'intact' : 'CORRUPTED'}`
}

function median(values: number[], digits = 0): string {
  if (values.length === 0) return '-'
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!.toFixed(digits)
}
