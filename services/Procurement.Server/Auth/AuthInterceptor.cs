using Grpc.Core;
using Grpc.Core.Interceptors;
using Procurement.Domain.Errors;

namespace Procurement.Server.Auth;

/// <summary>
/// Authenticates the bearer API key and authorizes the method by role before any handler (and so
/// before any validation) runs. Tenant scoping is then the handlers' job: another tenant's resource
/// answers NOT_FOUND.
/// </summary>
public sealed class AuthInterceptor(ApiKeys keys) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await AuthorizeAsync(context);
        return await continuation(request, context);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthorizeAsync(context);
        return await continuation(requestStream, context);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthorizeAsync(context);
        await continuation(request, responseStream, context);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthorizeAsync(context);
        await continuation(requestStream, responseStream, context);
    }

    private async Task AuthorizeAsync(ServerCallContext context)
    {
        if (MethodPolicies.IsAnonymous(context.Method))
        {
            return;
        }

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

        var principal = await keys.AuthenticateAsync(header[scheme.Length..].Trim(), context.CancellationToken)
            ?? throw new ProcurementException(ErrorKind.Unauthenticated, ErrorReasons.ApiKeyInvalid,
                "The API key is unknown or revoked.");

        if (!MethodPolicies.Allowed.TryGetValue(context.Method, out var roles) || !roles.Contains(principal.Role))
        {
            throw new ProcurementException(ErrorKind.PermissionDenied, ErrorReasons.RoleNotAllowed,
                $"A {principal.RoleName} key may not call {context.Method}.",
                metadata: new Dictionary<string, string> { ["role"] = principal.RoleName, ["method"] = context.Method });
        }

        context.SetPrincipal(principal);
    }
}
