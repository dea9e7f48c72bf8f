/**
 * bench:swarm's plain HTTP origin: a node:http server holding the file in memory answers
 * every GET with the whole file (one `end(buffer)`, no range or cache logic); a leecher
 * makes one GET on a fresh connection (no keep-alive agent) and hashes the body as it comes.
 */
import { createServer, get, type IncomingMessage } from 'node:http'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { ByteCounter, type SystemRoles } from './swarm-child.ts'

export const httpRoles: SystemRoles = {
  async seed(file) {
    const content = await readFile(file)
    const server = createServer((request, response) => {
      if (request.method !== 'GET') {
        response.writeHead(405).end()
        return
      }
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': content.byteLength })
      response.end(content)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file` }
  },

  async leecher({ seed }) {
    return {
      async fetch() {
        const response = await new Promise<IncomingMessage>((resolve, reject) => {
          get(String(seed['url']), { agent: false }, resolve).once('error', reject)
        })
        if (response.statusCode !== 200) throw new Error(`GET answered ${response.statusCode}`)
        const counter = new ByteCounter()
        for await (const chunk of response) counter.add(chunk as Buffer)
        return counter.result()
      },
    }
  },
}
