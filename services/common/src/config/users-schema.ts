import { z } from "zod";

/**
 * The `users` section: what the user lifecycle commands do by default (docs/operations.md "Removing,
 * exporting, disabling a user"). `sidecars users remove --attachments` and the admin API's
 * `DELETE /api/users/<jid>?attachments=` override it for one removal.
 */

export const ATTACHMENT_POLICIES = ["delete", "anonymise"] as const;
export type AttachmentPolicy = (typeof ATTACHMENT_POLICIES)[number];

export const usersSchema = z
  .object({
    removal: z
      .object({
        attachments: z
          .enum(ATTACHMENT_POLICIES)
          .default("delete")
          .describe(
            "the pictures and videos a removed user sent: `delete` (rows and files) or `anonymise` (kept for the chats that link to them, owned by no one, without their original names); their avatar is always deleted",
          ),
      })
      .strict()
      .prefault({})
      .describe("`sidecars users remove`"),
  })
  .strict()
  .prefault({})
  .describe('the user lifecycle (docs/operations.md "Removing, exporting, disabling a user")');

export type UsersConfig = z.output<typeof usersSchema>;
