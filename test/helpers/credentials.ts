// The programs' own credentials, as a cluster gives them: one piece of code
// with the benchmark's, in hack/credentials.ts.
export {
  agentAsDeployed,
  aggregatorAsDeployed,
  clientsFor,
  installDeploy,
  podRef,
  serviceAccountToken,
  type BoundObject,
  type Credentials,
} from "../../hack/credentials.ts";
