using Grpc.Core;
using Grpc.Core.Interceptors;
using Procurement.Domain.Errors;

namespace Procurement.Server.Auth;

/// <summary>
/// Authenticates the bearer API key, authorizes the method by role and holds the key's fair-use lease
/// for the call's length, before any handler (and so before any validation) runs. Tenant scoping is
/// then the handlers' job: another tenant's resource answers NOT_FOUND.
/// </summary>
public sealed class AuthInterceptor(ApiKeys keys, FairUse fairUse) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        using var lease = await AuthorizeAsync(context);
        return await continuation(request, context);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var lease = await AuthorizeAsync(context);
        return await continuation(requestStream, context);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var lease = await AuthorizeAsync(context, watchStream: true);
        await continuation(request, responseStream, context);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var lease = await AuthorizeAsync(context, watchStream: true);
        await continuation(requestStream, responseStream, context);
    }

    /// <summary>The key's fair-use lease for this call (null for the anonymous health and reflection methods).</summary>
    private async Task<IDisposable?> AuthorizeAsync(ServerCallContext context, bool watchStream = false)
    {
        if (MethodPolicies.IsAnonymous(context.Method))
        {
            return null;
        }

        var principal = await keys.AuthenticateAsync(BearerKey(context), context.CancellationToken)
            ?? throw new ProcurementException(ErrorKind.Unauthenticated, ErrorReasons.ApiKeyInvalid,
                "The API key is unknown or revoked.");

        if (!MethodPolicies.Allowed.TryGetValue(context.Method, out var roles) || !roles.Contains(principal.Role))
        {
            throw new ProcurementException(ErrorKind.PermissionDenied, ErrorReasons.RoleNotAllowed,
                $"A {principal.RoleName} key may not call {context.Method}.",
                metadata: new Dictionary<string, string> { ["role"] = principal.RoleName, ["method"] = context.Method });
        }

        var lease = fairUse.Acquire(principal, watchStream);
        context.SetPrincipal(principal);
        return lease;
    }

    /// <summary>The API key of the call's <c>authorization: Bearer</c> header.</summary>
    public static string BearerKey(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        if (string.IsNullOrEmpty(header))
        {
            throw new ProcurementException(ErrorKind.Unauthenticated, ErrorReasons.ApiKeyMissing,
                "No API key: send the header 'authorization: Bearer <api key>'.");
        }

        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || header.Length == scheme.Length)
        {
            throw new ProcurementException(ErrorKind.Unauthenticated, ErrorReasons.ApiKeyInvalid,
                "The authorization header must be 'Bearer <api key>'.");
        }

        return header[scheme.Length..].Trim();
    }
}
