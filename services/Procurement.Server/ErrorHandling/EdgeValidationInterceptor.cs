using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Procurement.Domain.Errors;

namespace Procurement.Server.ErrorHandling;

/// <summary>
/// Checks every unary and server-streaming request's strings, timestamps and durations
/// (<see cref="EdgeValidation"/>) after auth and before the handler. Streamed usage samples are checked one by one by ingestion,
/// with the same rules, so one bad sample is rejected alone.
/// </summary>
public sealed class EdgeValidationInterceptor : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(request);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(request);
        return continuation(request, responseStream, context);
    }

    private static void Check<TRequest>(TRequest request)
    {
        if (request is IMessage message)
        {
            var violations = new List<FieldViolation>();
            EdgeValidation.Check(message, violations);
            DomainErrors.ThrowIfAny(violations);
        }
    }
}
