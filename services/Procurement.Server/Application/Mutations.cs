using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Server.Auth;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Application;

/// <summary>What a mutation decided: the response and the resource it changed (for the audit log).</summary>
public sealed record MutationResult<TResponse>(TResponse Response, string ResourceType, string ResourceId);

/// <summary>
/// What a mutation's decision runs with: the session, the time the unit began, the caller, and the
/// clock, for a decision that must be timed after a wait for a pool (<see cref="AllocationOperations"/>).
/// </summary>
public sealed record MutationScope(IStoreSession Session, DateTimeOffset Now, Principal Principal)
{
    public Func<DateTimeOffset> Clock { get; init; } = () => Now;
}

/// <summary>
/// Runs every mutating RPC the same way, in one unit of work: look up the request id (a replay returns
/// the first response, a reuse with another request is refused), decide, then write the idempotency
/// record and the audit record in the same transaction as the change.
/// </summary>
public sealed class Mutations(IProcurementStore store, TimeProvider time)
{
    public async Task<TResponse> RunAsync<TRequest, TResponse>(
        ServerCallContext context,
        TRequest request,
        string requestId,
        Func<MutationScope, Task<MutationResult<TResponse>>> decide)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>, new()
    {
        var principal = context.GetPrincipal();
        if (!Identifiers.IsRequestId(requestId))
        {
            throw DomainErrors.Invalid("request_id", "is required: 1..128 printable ASCII characters, e.g. a UUID generated once per logical request");
        }

        var method = context.Method;
        var hash = RequestHash(method, request);
        return await store.WriteAsync(async session =>
        {
            var previous = await session.Idempotency.FindAsync(principal.IdempotencyScope, requestId);
            if (previous is not null)
            {
                if (previous.Method != method || previous.RequestHash != hash)
                {
                    throw new ProcurementException(ErrorKind.InvalidArgument, ErrorReasons.RequestIdReused,
                        $"request_id '{requestId}' was already used for a different request ({previous.Method}); use a new request_id for a new request.",
                        [new FieldViolation("request_id", "was already used for a different request")]);
                }

                return new MessageParser<TResponse>(() => new TResponse()).ParseFrom(previous.Response);
            }

            // The decision time is taken inside the unit, so times follow commit order.
            var now = TruncateToMilliseconds(time.GetUtcNow());
            var result = await decide(new MutationScope(session, now, principal) { Clock = () => TruncateToMilliseconds(time.GetUtcNow()) });
            await session.Idempotency.InsertAsync(new IdempotencyRecord(
                principal.IdempotencyScope, requestId, method, hash, result.Response.ToByteArray(), now));
            await session.Audit.AppendAsync(new AuditEvent(0, now, principal.KeyId, principal.RoleName, principal.TenantId,
                method, requestId, result.ResourceType, result.ResourceId));
            return result.Response;
        }, context.CancellationToken);
    }

    /// <summary>Stored times have millisecond precision; decisions use the same so replies match later reads.</summary>
    public static DateTimeOffset TruncateToMilliseconds(DateTimeOffset t) => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());

    /// <summary>SHA-256 over the method and the request without its request_id.</summary>
    public static string RequestHash<TRequest>(string method, TRequest request) where TRequest : IMessage<TRequest>
    {
        var copy = request.Clone();
        copy.Descriptor.FindFieldByName("request_id")?.Accessor.Clear(copy);
        var methodBytes = System.Text.Encoding.UTF8.GetBytes(method);
        var body = copy.ToByteArray();
        var buffer = new byte[methodBytes.Length + 1 + body.Length];
        methodBytes.CopyTo(buffer, 0);
        body.CopyTo(buffer, methodBytes.Length + 1);
        return Convert.ToHexStringLower(SHA256.HashData(buffer));
    }
}
