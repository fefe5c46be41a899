using System.Diagnostics;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Procurement.Server.Telemetry;

/// <summary>
/// Outermost: records every call's duration with its gRPC status code (HTTP metrics say 200 for a
/// gRPC error), and counts the calls storage failed, by reason.
/// </summary>
public sealed class TelemetryInterceptor(ProcurementMetrics metrics) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        MeasureAsync(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        MeasureAsync(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        MeasureAsync(context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        });

    private async Task<T> MeasureAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        try
        {
            return await call();
        }
        catch (RpcException e)
        {
            code = Observe(e);
            throw;
        }
        finally
        {
            metrics.RpcCompleted(context.Method, code, Stopwatch.GetElapsedTime(started));
        }
    }

    private StatusCode Observe(RpcException e)
    {
        if (e.StatusCode == StatusCode.Unavailable && e.GetRpcStatus()?.GetDetail<ErrorInfo>()?.Reason is { } reason && reason.StartsWith("STORAGE_", StringComparison.Ordinal))
        {
            metrics.StorageError(reason);
        }

        return e.StatusCode;
    }
}
