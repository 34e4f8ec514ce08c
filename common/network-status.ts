// The edge where Multus' network-status annotation becomes typed attachments.
import { z } from "zod";
import { annotations as annotationKeys } from "./api.ts";

/** One network attachment of a pod, as Multus recorded it. */
export type Attachment = {
  /** `namespace/name` of the NetworkAttachmentDefinition (Multus >= 3.6), or a bare name (older Multus). */
  name: string;
  interface?: string;
  /** Addresses exactly as written (bare or CIDR, not yet normalised). */
  ips: string[];
  /** The pod's cluster-network attachment. */
  default: boolean;
};

export type NetworkStatusResult =
  | { ok: true; attachments: Attachment[] }
  | { ok: false; error: string };

/**
 * Reads the attachments Multus recorded on a pod.
 *
 * The singular annotation wins when both are present: Multus >= 3.6 writes
 * it, and a pod that still carries the legacy one next to it was annotated by
 * an older writer whose data is at best a copy, at worst stale.
 *
 * A malformed value is an error for this pod only; callers drop the pod and
 * warn, never guess at half of an annotation.
 */
export function parseNetworkStatus(
  annotations: Record<string, string> | undefined,
): NetworkStatusResult {
  const key =
    annotations?.[annotationKeys.networkStatus] !== undefined
      ? annotationKeys.networkStatus
      : annotationKeys.legacyNetworkStatus;
  const value = annotations?.[key];
  // Some tools clear an annotation by emptying it rather than removing it.
  if (value === undefined || value.trim() === "") return { ok: true, attachments: [] };

  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return { ok: false, error: `${key}: not valid JSON` };
  }
  const parsed = networkStatusSchema.safeParse(json);
  if (!parsed.success) return { ok: false, error: `${key}: ${describeFirstIssue(parsed.error)}` };
  return { ok: true, attachments: parsed.data };
}

// Multus writes these entries from Go structs with `omitempty`, but other
// writers serialise an empty slice or string as null, so null counts as
// absent. Unknown fields (dns, mac, device-info, ...) are ignored.
const attachmentSchema = z
  .object({
    name: z.string(),
    interface: z.string().nullish(),
    ips: z.array(z.string()).nullish(),
    default: z.boolean().nullish(),
  })
  .transform(
    (entry): Attachment => ({
      name: entry.name,
      ...(entry.interface ? { interface: entry.interface } : {}),
      ips: entry.ips ?? [],
      default: entry.default ?? false,
    }),
  );

const networkStatusSchema = z.array(attachmentSchema);

// One issue is enough to fix the writer, and keeps the message (and the Event
// carrying it) short even when 10,000 entries are wrong.
function describeFirstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  const [index, ...field] = issue.path;
  const where =
    typeof index === "number"
      ? `entry ${index}${field.length > 0 ? ` field ${field.map(String).join(".")}` : ""}: `
      : "";
  const what =
    issue.code === "invalid_type" && issue.path.length === 0
      ? "expected a JSON list of attachments"
      : issue.message;
  return `${where}${what}`;
}
