/** @grantd/dpop passes the sender-constraint contract (test/helpers/sender-constraint-contract.ts). */
import t from 'tap'
import { senderConstraintContract, type SenderProver } from '../helpers/sender-constraint-contract.js'
import { makeProof, proofKey } from './proofs.js'

async function dpopProver(): Promise<SenderProver> {
  const key = await proofKey()
  return {
    async send(url, init, accessToken) {
      const htu = url.split('?')[0]!
      const dpop = await makeProof(key, { htm: init.method, htu, ...(accessToken !== undefined ? { accessToken } : {}) })
      return fetch(url, { method: init.method, headers: { ...(init.headers ?? {}), dpop }, ...(init.body !== undefined ? { body: init.body } : {}) })
    },
  }
}

senderConstraintContract(t, { plugin: { use: '@grantd/dpop' }, prover: dpopProver, scheme: 'DPoP', tokenType: 'DPoP' })
